"""The Grafana side of the full stack, checked without a Grafana: provisioning files,
the "Movebank tracks" dashboard's structure, and the query extraction that the live
query tests use (tests/support/grafana_queries.py)."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from datetime import datetime, timezone

import pytest

from support.data import REPO, SAMPLE
from support.grafana_queries import (
    ALL,
    auto_interval_ms,
    escape_regex,
    format_interval,
    panel_targets,
    replace_server_macros,
    replace_variables,
    round_interval_ms,
    runnable_queries,
)

yaml = pytest.importorskip("yaml", reason="PyYAML reads the provisioning files (pip install pyyaml)")

GRAFANA = REPO / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
TRACKS = DASHBOARDS / "movebank-tracks.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources"
PROVIDERS = GRAFANA / "provisioning" / "dashboards"
GRID_COLUMNS = 24

# The converter's Movebank preset: tags, the fields it names itself, and every other
# sample column in snake_case (see the contract in the project brief / README).
MOVEBANK_TAGS = {"individual", "sensor", "study", "tag", "taxon"}
MOVEBANK_NAMED_FIELDS = {
    "lat", "lon", "event_id", "visible",
    "manually_marked_outlier", "algorithm_marked_outlier", "import_marked_outlier",
}


def snake_case(column: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")


def load_generator():
    spec = importlib.util.spec_from_file_location("csv2lp_grafana_generator", GRAFANA / "generate_dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(TRACKS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def datasource() -> dict:
    files = sorted(DATASOURCES.glob("*.yaml"))
    assert files, f"no data source provisioning file in {DATASOURCES}"
    sources = [source for path in files for source in yaml.safe_load(path.read_text())["datasources"]]
    assert len(sources) == 1, f"expected one provisioned data source, found {[s['name'] for s in sources]}"
    return sources[0]


def all_panels(dashboard: dict) -> list[dict]:
    return [inner for panel in dashboard["panels"] for inner in [panel, *panel.get("panels", [])]]


def panel_titled(dashboard: dict, words: str) -> dict:
    matches = [panel for panel in all_panels(dashboard) if words.lower() in panel["title"].lower()]
    assert len(matches) == 1, f"expected one panel titled like {words!r}, found {[p['title'] for p in matches]}"
    return matches[0]


def only_query(panel: dict) -> str:
    (target,) = panel["targets"]
    return target["query"]


# --- the committed JSON is the generator's output -------------------------------------


def test_committed_dashboard_equals_generator_output():
    generator = load_generator()
    expected = generator.render(generator.build_dashboard(generator.individuals_in([SAMPLE])))
    assert TRACKS.read_text(encoding="utf-8") == expected, (
        "grafana/dashboards/movebank-tracks.json is stale: run python grafana/generate_dashboard.py"
    )


def test_generator_check_mode_reports_a_stale_file(tmp_path):
    generator = load_generator()
    stale = tmp_path / "tracks.json"
    stale.write_text("{}\n")
    assert generator.main(["--check", "--output", str(stale)]) == 1
    assert generator.main(["--output", str(stale)]) == 0
    assert generator.main(["--check", "--output", str(stale)]) == 0


def test_generator_refuses_a_csv_without_individuals(tmp_path):
    not_movebank = tmp_path / "other.csv"
    not_movebank.write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit, match="individual-local-identifier"):
        load_generator().individuals_in([not_movebank])


# --- provisioning ---------------------------------------------------------------------


def test_datasource_speaks_influxql_to_influxdb_2_with_a_token_from_the_environment(datasource):
    assert datasource["type"] == "influxdb"
    assert datasource["access"] == "proxy"
    assert datasource["url"] == "${INFLUX_URL}"
    assert datasource["jsonData"]["version"] == "InfluxQL"
    assert datasource["jsonData"]["dbName"] == "${INFLUX_BUCKET}"
    assert datasource["jsonData"]["httpHeaderName1"] == "Authorization"
    assert datasource["secureJsonData"] == {"httpHeaderValue1": "Token ${INFLUX_TOKEN}"}


def test_dashboard_provider_loads_the_folder_compose_mounts():
    (path,) = sorted(PROVIDERS.glob("*.yaml"))
    (provider,) = yaml.safe_load(path.read_text())["providers"]
    assert provider["type"] == "file"
    # docker-compose.yml mounts grafana/dashboards here (test_stack_compose checks that side).
    assert provider["options"]["path"] == "/etc/grafana/dashboards"


# --- classic dashboard structure ------------------------------------------------------


def test_every_dashboard_is_classic_json_with_a_unique_uid():
    uids = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        # Grafana 13's v2 resources ({"apiVersion", "kind", "spec"}) are rejected by file provisioning.
        assert "spec" not in board and "apiVersion" not in board, f"{path.name} is not classic dashboard JSON"
        assert isinstance(board.get("schemaVersion"), int), path.name
        assert isinstance(board.get("panels"), list) and board["panels"], path.name
        assert board.get("uid") and len(board["uid"]) <= 40, f"{path.name}: uid missing or longer than 40"
        uids.append(board["uid"])
    assert uids, f"no dashboard JSON in {DASHBOARDS}"
    assert len(uids) == len(set(uids)), f"duplicate dashboard uids: {uids}"


def test_panel_ids_are_unique(dashboard):
    ids = [panel["id"] for panel in all_panels(dashboard)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"


def test_every_panel_fits_the_24_column_grid(dashboard):
    for panel in all_panels(dashboard):
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["y"] >= 0 and pos["w"] >= 1 and pos["h"] >= 1, panel["title"]
        assert pos["x"] + pos["w"] <= GRID_COLUMNS, f"{panel['title']!r} ends past column {GRID_COLUMNS}"


def test_panels_do_not_overlap(dashboard):
    def cells(panel):
        pos = panel["gridPos"]
        return {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}

    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        for cell in cells(panel):
            assert cell not in taken, f"{panel['title']!r} overlaps {taken[cell]!r} at {cell}"
            taken[cell] = panel["title"]


def test_every_query_uses_the_provisioned_datasource_uid(dashboard, datasource):
    expected = {"type": "influxdb", "uid": datasource["uid"]}
    for panel in all_panels(dashboard):
        assert panel["datasource"] == expected, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == expected, f"{panel['title']} {target['refId']}"
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"] == expected, variable["name"]


def test_targets_are_raw_influxql_with_unique_ref_ids_and_the_time_filter(dashboard):
    for panel in all_panels(dashboard):
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["rawQuery"] is True
            assert target["query"].startswith("SELECT "), target["query"]
            # Without it a panel reads the whole measurement, whatever the time picker says.
            assert "$timeFilter" in target["query"], target["query"]


def test_queries_only_name_tags_and_fields_the_converter_writes(dashboard):
    with SAMPLE.open(newline="", encoding="utf-8") as handle:
        sample_fields = {snake_case(column) for column in next(csv.reader(handle))}
    known = MOVEBANK_TAGS | MOVEBANK_NAMED_FIELDS | sample_fields
    queries = [target["query"] for _, target in panel_targets(dashboard)]
    queries += [variable["query"] for variable in dashboard["templating"]["list"]]
    for query in queries:
        assert 'FROM "movebank"' in query, query
        without_aliases = re.sub(r'\bAS "[^"]*"', "", query)
        names = set(re.findall(r'"([^"]+)"', without_aliases)) - {"movebank"}
        assert names <= known, f"{query}\n  names no tag or field of the Movebank preset: {names - known}"


# --- variables --------------------------------------------------------------------------


def test_study_taxon_and_individual_pickers_list_tag_values(dashboard):
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert list(variables) == ["study", "taxon", "individual"]
    for name, variable in variables.items():
        assert variable["type"] == "query"
        assert variable["query"].startswith(f'SHOW TAG VALUES FROM "movebank" WITH KEY = "{name}"')
    # Each picker narrows the next one.
    assert '"study" =~ /^$study$/' in variables["taxon"]["query"]
    assert '"taxon" =~ /^$taxon$/' in variables["individual"]["query"]


def test_individual_picker_is_single_value_because_the_route_is_one_animal(dashboard):
    individual = next(v for v in dashboard["templating"]["list"] if v["name"] == "individual")
    assert individual["multi"] is False and individual["includeAll"] is False


# --- panels -------------------------------------------------------------------------------


def test_map_layers_each_get_one_frame_of_coordinates(dashboard):
    geomap = panel_titled(dashboard, "route of")
    assert geomap["type"] == "geomap"
    targets = {target["refId"]: target for target in geomap["targets"]}
    layers = {layer["type"]: layer for layer in geomap["options"]["layers"]}
    assert set(layers) == {"markers", "route"}
    for layer in layers.values():
        assert layer["location"] == {"mode": "coords", "latitude": "lat", "longitude": "lon"}
        assert layer["filterData"]["id"] == "byRefId"
        query = targets[layer["filterData"]["options"]]["query"]
        assert query.startswith('SELECT "lat", "lon"'), query
        # GROUP BY makes one frame per series, and Geomap draws only a layer's first frame.
        assert "GROUP BY" not in query, query
    assert '"individual" =~ /^$individual$/' in targets[layers["route"]["filterData"]["options"]]["query"]


def test_map_markers_are_colored_by_individual(dashboard):
    geomap = panel_titled(dashboard, "route of")
    markers = next(layer for layer in geomap["options"]["layers"] if layer["type"] == "markers")
    assert markers["config"]["style"]["color"]["field"] == "individual"
    markers_query = next(t for t in geomap["targets"] if t["refId"] == markers["filterData"]["options"])["query"]
    assert '"individual"' in markers_query.split(" FROM ")[0], "the markers query must return the individual column"
    (override,) = geomap["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byName", "options": "individual"}
    properties = {prop["id"]: prop["value"] for prop in override["properties"]}
    assert properties["color"]["mode"] == "thresholds", "mappings only color markers in a by-value color mode"
    exact = properties["mappings"][0]["options"]
    assert set(exact) == {"F1", "F2", "M1"}, "the bundled sample's animals get their own colors"
    assert len({entry["color"] for entry in exact.values()}) == 3


@pytest.mark.parametrize(
    "name, color",
    [("F1", "orange"), ("F2", "green"), ("M1", "orange"), ("1072", "green"), ("tag-9", "light-purple"),
     ("albatross B", "orange"), ("bird_z", "yellow"), ("ends-with-dash-", None)],
)
def test_unknown_individuals_fall_back_to_a_color_by_last_character(name, color):
    generator = load_generator()
    mappings = generator.individual_color_mappings([])
    matched = [m["options"]["result"]["color"] for m in mappings
               if re.search(m["options"]["pattern"].strip("/"), name)]
    assert matched[:1] == ([color] if color else [])


def test_fixes_per_day_per_individual(dashboard):
    query = only_query(panel_titled(dashboard, "fixes per day"))
    assert 'count("lat")' in query and 'GROUP BY time(1d), "individual"' in query


@pytest.mark.parametrize("field", ["ground_speed", "height_above_ellipsoid"])
def test_speed_and_height_of_the_selected_individual_over_time(dashboard, field):
    (panel,) = [p for p in all_panels(dashboard) if f'"{field}"' in " ".join(t["query"] for t in p["targets"])]
    assert panel["type"] == "timeseries"
    query = only_query(panel)
    assert '"individual" =~ /^$individual$/' in query and "GROUP BY time($__interval)" in query


def test_last_fix_table_has_one_row_per_individual(dashboard):
    panel = panel_titled(dashboard, "last fix")
    assert panel["type"] == "table"
    (target,) = panel["targets"]
    # Table format folds every series into one frame with an `individual` column.
    assert target["resultFormat"] == "table"
    assert 'last("lat")' in target["query"] and target["query"].endswith('GROUP BY "individual"')


def test_data_quality_counts_missing_coordinates_and_outliers(dashboard):
    panel = panel_titled(dashboard, "data quality")
    queries = " ".join(target["query"] for target in panel["targets"])
    assert 'count("event_id") - count("lat") AS "without coordinates"' in queries
    for flag in ('"visible" = false', '"manually_marked_outlier" = true', '"algorithm_marked_outlier" = true'):
        assert flag in queries
    assert {t["resultFormat"] for t in panel["targets"]} == {"table"}
    assert panel["transformations"][0]["id"] == "merge"


# --- query extraction for the live tests (tests/support/grafana_queries.py) ------------


FROM = datetime(2009, 1, 1, tzinfo=timezone.utc)
TO = datetime(2012, 1, 1, tzinfo=timezone.utc)
STUDY = "Martes pennanti LaPoint New York"


def test_runnable_queries_cover_every_variable_and_target(dashboard):
    queries = runnable_queries(
        dashboard, selections={"study": STUDY, "taxon": ALL, "individual": "F1"}, time_from=FROM, time_to=TO,
    )
    targets = panel_targets(dashboard)
    assert len(queries) == len(dashboard["templating"]["list"]) + len(targets)
    for query in queries:
        # `$/` is a regex anchor; any `$name` left would reach InfluxDB unreplaced.
        assert not re.search(r"\$\w|\[\[", query.influxql), f"{query.origin}: {query.influxql}"
    markers = next(q for q in queries if q.origin.startswith("panel 1 ") and q.origin.endswith(" A"))
    assert markers.influxql == (
        'SELECT "lat", "lon", "individual" FROM "movebank" WHERE "study" =~ /^Martes pennanti LaPoint New York$/'
        ' AND "taxon" =~ /^.*$/ AND time >= 1230768000000ms and time <= 1325376000000ms'
    )


def test_interval_macro_follows_the_time_range(dashboard):
    queries = runnable_queries(
        dashboard, selections={"study": ALL, "taxon": ALL, "individual": "F1"}, time_from=FROM, time_to=TO,
        max_data_points=1000,
    )
    speed = next(q for q in queries if '"ground_speed"' in q.influxql)
    # 3 years / 1000 points = 26.3 h, which Grafana rounds to 1 day.
    assert speed.influxql.endswith("GROUP BY time(1d) fill(none)")


@pytest.mark.parametrize(
    "selection, expected",
    [
        ("F1", '"individual" =~ /^F1$/'),
        ("a.b/c (x)", r'"individual" =~ /^a\.b\/c \(x\)$/'),
        (["F1", "M1"], '"individual" =~ /^(F1|M1)$/'),
        (["F1"], '"individual" =~ /^F1$/'),
    ],
)
def test_variables_are_regex_escaped_like_grafana_does(selection, expected):
    variables = {"individual": {"name": "individual", "multi": True, "includeAll": True, "allValue": ".*"}}
    query = '"individual" =~ /^$individual$/'
    assert replace_variables(query, variables, {"individual": selection}) == expected


@pytest.mark.parametrize("syntax", ["$taxon", "${taxon}", "[[taxon]]", "${taxon:regex}"])
def test_all_three_variable_syntaxes_are_replaced(syntax):
    variables = {"taxon": {"name": "taxon", "multi": True, "includeAll": True, "allValue": ".*"}}
    assert replace_variables(f"/^{syntax}$/", variables, {"taxon": ALL}) == "/^.*$/"


@pytest.mark.parametrize(
    "query, variables, selections, message",
    [
        ("WHERE x =~ /^$studdy$/", {"study": {"name": "study"}}, {"study": "s"}, "no variable"),
        ("WHERE x =~ /^$study$/", {"study": {"name": "study"}}, {}, "no selection"),
        ("WHERE x =~ /^$study$/", {"study": {"name": "study", "multi": False}}, {"study": ["a", "b"]}, "single-value"),
        ("WHERE x =~ /^$study$/", {"study": {"name": "study", "includeAll": False}}, {"study": ALL}, "no All option"),
        ("WHERE x =~ /^$study$/", {"study": {"name": "study", "includeAll": True}}, {"study": ALL}, "allValue"),
    ],
)
def test_bad_variables_or_selections_raise_instead_of_sending_a_broken_query(query, variables, selections, message):
    with pytest.raises(ValueError, match=message):
        replace_variables(query, variables, selections)


def test_server_macros_are_left_for_the_server_then_replaced():
    browser_side = replace_variables("WHERE $timeFilter GROUP BY time($__interval)", {}, {})
    assert browser_side == "WHERE $timeFilter GROUP BY time($__interval)"
    assert replace_server_macros(browser_side, FROM, TO, 3_600_000) == (
        "WHERE time >= 1230768000000ms and time <= 1325376000000ms GROUP BY time(1h)"
    )


def test_time_range_must_be_absolute():
    with pytest.raises(ValueError, match="time zone"):
        replace_server_macros("$timeFilter", datetime(2011, 1, 1), TO, 1000)


@pytest.mark.parametrize(
    "raw_ms, rounded",
    [(5, 1), (1_000, 1_000), (40_000, 30_000), (100_000, 120_000), (94_672_800, 86_400_000),
     (631_152_000, 604_800_000), (5e9, 31_536_000_000)],
)
def test_interval_rounding_matches_grafana(raw_ms, rounded):
    assert round_interval_ms(raw_ms) == rounded


@pytest.mark.parametrize(
    "interval_ms, text",
    [(1, "1ms"), (500, "500ms"), (1_000, "1s"), (90_000, "1m"), (3_600_000, "1h"),
     (604_800_000, "7d"), (2_592_000_000, "30d"), (31_536_000_000, "1y")],
)
def test_interval_formatting_matches_grafana_backend(interval_ms, text):
    assert format_interval(interval_ms) == text


def test_auto_interval_for_twenty_years_is_a_week():
    twenty_years_ago = datetime(2006, 1, 1, tzinfo=timezone.utc)
    assert format_interval(auto_interval_ms(twenty_years_ago, datetime(2026, 1, 1, tzinfo=timezone.utc),
                                            max_data_points=1000)) == "7d"


def test_escape_regex_escapes_the_influxql_regex_delimiter():
    assert escape_regex("a/b") == r"a\/b"
    assert escape_regex(r"\d+") == r"\\d\+"
