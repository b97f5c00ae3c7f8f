"""Generate grafana/dashboards/movebank-tracks.json, the "Movebank tracks" dashboard.

The dashboard is classic dashboard JSON (uid, schemaVersion, panels): the only format
Grafana's file provisioning loads (Grafana 13's v2 resource JSON is rejected there).
Every query is raw InfluxQL against measurement `movebank`, so the dashboard works on
InfluxDB 1.x, 2.x (through the bucket's DBRP mapping) and 3.x alike.

    python grafana/generate_dashboard.py            # rewrite the committed JSON
    python grafana/generate_dashboard.py --check    # exit 1 if the committed JSON is stale
    python grafana/generate_dashboard.py --individuals-from my-study.csv.gz

Only the standard library: the generator runs anywhere the repository is checked out.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import string
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUTPUT = HERE / "dashboards" / "movebank-tracks.json"
SAMPLE = REPO / "examples" / "fishers-sample.csv"

DASHBOARD_UID = "movebank-tracks"
# Must equal the uid in provisioning/datasources/influxdb.yaml (a test checks it).
DATASOURCE = {"type": "influxdb", "uid": "movebank-influxql"}
MEASUREMENT = "movebank"
# Movebank column that names the animal (the converter's `individual` tag).
INDIVIDUAL_COLUMN = "individual-local-identifier"
# Grafana migrates a dashboard with a lower schemaVersion when it loads it, never the reverse.
SCHEMA_VERSION = 39

# Tag filters shared by every panel: the study and taxon pickers (multi-value, "All" = .*).
STUDY_AND_TAXON = '"study" =~ /^$study$/ AND "taxon" =~ /^$taxon$/'
# The animal picker is single-value: the route layer joins every point of its frame
# into one line, so it must only ever get one animal's fixes.
ONE_INDIVIDUAL = f'{STUDY_AND_TAXON} AND "individual" =~ /^$individual$/'

# Named Grafana colors, distinct enough to tell animals apart on a map.
PALETTE = (
    "blue", "orange", "green", "red", "purple",
    "yellow", "light-blue", "dark-orange", "dark-green", "light-purple",
)


def build_dashboard(individuals: Sequence[str]) -> dict:
    """The whole dashboard; `individuals` get fixed marker colors (see individual_color_mappings)."""
    panels = [
        tracks_map_panel(panel_id=1, grid=grid(x=0, y=0, w=16, h=14), individuals=individuals),
        last_seen_panel(panel_id=2, grid=grid(x=16, y=0, w=8, h=14)),
        fixes_per_day_panel(panel_id=3, grid=grid(x=0, y=14, w=24, h=8)),
        individual_timeseries_panel(
            panel_id=4, grid=grid(x=0, y=22, w=12, h=8), title="Ground speed of $individual",
            field="ground_speed", label="ground speed", unit="velocityms",
        ),
        individual_timeseries_panel(
            panel_id=5, grid=grid(x=12, y=22, w=12, h=8), title="Height above ellipsoid of $individual",
            field="height_above_ellipsoid", label="height", unit="lengthm",
        ),
        data_quality_table_panel(panel_id=6, grid=grid(x=0, y=30, w=14, h=8)),
        missing_coordinates_panel(panel_id=7, grid=grid(x=14, y=30, w=10, h=8)),
    ]
    return {
        "uid": DASHBOARD_UID,
        "title": "Movebank tracks",
        "description": "Animal tracks written by csv2lp (measurement `movebank`), queried with InfluxQL.",
        "tags": ["movebank", "csv2lp", "influxdb"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "utc",
        # Movebank studies are history: look back far enough to find them on first load.
        "time": {"from": "now-20y", "to": "now"},
        "timepicker": {},
        "refresh": "",
        "links": [],
        "annotations": {"list": []},
        "templating": {"list": [
            tag_variable("study", "Study", where=None, multi=True),
            tag_variable("taxon", "Taxon", where='"study" =~ /^$study$/', multi=True),
            tag_variable("individual", "Individual", where=STUDY_AND_TAXON, multi=False),
        ]},
        "panels": panels,
    }


# --- building blocks -------------------------------------------------------------------


def grid(*, x: int, y: int, w: int, h: int) -> dict:
    return {"x": x, "y": y, "w": w, "h": h}


def influxql_target(ref_id: str, query: str, *, result_format: str = "time_series", alias: str = "") -> dict:
    """A raw InfluxQL query; Grafana substitutes $variables, $timeFilter and $__interval."""
    target = {
        "refId": ref_id,
        "datasource": dict(DATASOURCE),
        "rawQuery": True,
        "query": query,
        "resultFormat": result_format,
    }
    if alias:
        target["alias"] = alias
    return target


def select(fields: str, *, where: str, group_by: str = "") -> str:
    """SELECT ... FROM "movebank" WHERE <where> AND $timeFilter [GROUP BY ...]."""
    query = f'SELECT {fields} FROM "{MEASUREMENT}" WHERE {where} AND $timeFilter'
    return f"{query} GROUP BY {group_by}" if group_by else query


def tag_variable(name: str, label: str, *, where: str | None, multi: bool) -> dict:
    """A dashboard variable listing the values of one tag, optionally filtered by the pickers before it."""
    query = f'SHOW TAG VALUES FROM "{MEASUREMENT}" WITH KEY = "{name}"'
    if where:
        query += f" WHERE {where}"
    variable = {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": dict(DATASOURCE),
        "query": query,
        "definition": query,
        "refresh": 1,  # on dashboard load: new studies appear without editing the dashboard
        "sort": 1,
        "regex": "",
        "hide": 0,
        "multi": multi,
        "includeAll": multi,
        "current": {},
        "options": [],
    }
    if multi:
        # "All" as one regex instead of an alternation of every value: short queries.
        variable["allValue"] = ".*"
        # First load shows everything; the single-value picker starts on its first value.
        variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return variable


def panel(panel_id: int, kind: str, title: str, grid_pos: dict, targets: list[dict], **extra) -> dict:
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "gridPos": grid_pos,
        "datasource": dict(DATASOURCE),
        "targets": targets,
        **extra,
    }


# --- panels --------------------------------------------------------------------------------


def tracks_map_panel(*, panel_id: int, grid: dict, individuals: Sequence[str]) -> dict:
    """Geomap: every animal's fixes as dots colored by animal, and the selected animal's route.

    Geomap draws only the first data frame a layer gets, so each layer is fed exactly one
    frame: its own query (filterData byRefId), with no GROUP BY (one series, one frame).
    The markers query selects the `individual` tag as a column, so the frame still says
    which animal each fix belongs to. InfluxQL leaves out rows whose selected fields are
    all empty: fix attempts without coordinates never reach the map.
    """
    location = {"mode": "coords", "latitude": "lat", "longitude": "lon"}
    markers = {
        "type": "markers",
        "name": "Fixes",
        "filterData": {"id": "byRefId", "options": "A"},
        "location": location,
        "tooltip": True,
        "config": {
            "showLegend": False,
            "style": {
                "color": {"field": "individual", "fixed": "text"},
                "opacity": 0.6,
                "size": {"fixed": 4},
                "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
            },
        },
    }
    route = {
        "type": "route",
        "name": "Route of the selected individual",
        "filterData": {"id": "byRefId", "options": "B"},
        "location": location,
        "tooltip": True,
        "config": {
            "arrow": 1,
            "style": {"color": {"fixed": "red"}, "lineWidth": 2, "opacity": 1, "size": {"fixed": 3}},
        },
    }
    targets = [
        influxql_target("A", select('"lat", "lon", "individual"', where=STUDY_AND_TAXON), result_format="table"),
        influxql_target("B", select('"lat", "lon"', where=ONE_INDIVIDUAL), result_format="table"),
    ]
    individual_colors = {
        "matcher": {"id": "byName", "options": "individual"},
        "properties": [
            # Color "by value" so the markers layer asks the value mappings for each dot's color.
            {"id": "color", "value": {"mode": "thresholds"}},
            {"id": "thresholds", "value": {"mode": "absolute", "steps": [{"color": "text", "value": None}]}},
            {"id": "mappings", "value": individual_color_mappings(individuals)},
        ],
    }
    return panel(
        panel_id, "geomap", "Fixes by individual, route of $individual", grid, targets,
        options={
            "view": {"id": "fit", "allLayers": True, "lat": 0, "lon": 0, "zoom": 1},
            "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True, "showScale": True},
            "basemap": {"type": "default", "name": "Basemap", "config": {}},
            "layers": [markers, route],
            "tooltip": {"mode": "details"},
        },
        fieldConfig={"defaults": {}, "overrides": [individual_colors]},
    )


def last_seen_panel(*, panel_id: int, grid: dict) -> dict:
    """One row per animal: time and place of its last fix with coordinates."""
    # last() is a selector: "lon" comes from the same point as the last "lat".
    query = select('last("lat") AS "lat", "lon"', where=STUDY_AND_TAXON, group_by='"individual"')
    return panel(
        panel_id, "table", "Last fix per individual", grid,
        [influxql_target("A", query, result_format="table")],
        transformations=[
            {"id": "organize", "options": {"renameByName": {
                "Time": "last fix (UTC)", "lat": "latitude", "lon": "longitude",
            }}},
        ],
        options={"showHeader": True, "sortBy": [{"displayName": "last fix (UTC)", "desc": True}]},
        fieldConfig={"defaults": {"decimals": 5}, "overrides": []},
    )


def fixes_per_day_panel(*, panel_id: int, grid: dict) -> dict:
    query = select('count("lat") AS "fixes"', where=STUDY_AND_TAXON, group_by='time(1d), "individual" fill(none)')
    return panel(
        panel_id, "timeseries", "Fixes per day per individual", grid,
        [influxql_target("A", query, alias="$tag_individual")],
        fieldConfig={"defaults": {
            "unit": "short",
            "decimals": 0,
            "custom": {"drawStyle": "bars", "fillOpacity": 60, "stacking": {"mode": "normal", "group": "A"}},
        }, "overrides": []},
        options={"legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"},
                 "tooltip": {"mode": "multi", "sort": "desc"}},
    )


def individual_timeseries_panel(
    *, panel_id: int, grid: dict, title: str, field: str, label: str, unit: str
) -> dict:
    """Mean of one numeric field of the selected animal, per auto-sized interval."""
    query = select(f'mean("{field}") AS "{label}"', where=ONE_INDIVIDUAL, group_by="time($__interval) fill(none)")
    return panel(
        panel_id, "timeseries", title, grid,
        [influxql_target("A", query, alias=label)],
        fieldConfig={"defaults": {
            "unit": unit,
            "custom": {"drawStyle": "line", "lineWidth": 1, "showPoints": "auto", "spanNulls": False},
        }, "overrides": []},
        options={"legend": {"showLegend": False}, "tooltip": {"mode": "single"}},
    )


def data_quality_table_panel(*, panel_id: int, grid: dict) -> dict:
    """Per animal: records, fixes, records without coordinates, and records flagged as outliers.

    One query per WHERE clause; aggregates without GROUP BY time() all carry the start of
    the time range as their time, so Grafana's "merge" joins them into one row per animal.
    fill(0): an animal with records but no fix in the range has count("lat") null, and
    null in `count - count` makes the difference null too; filled, it is 0 fixes and all
    records without coordinates.
    """
    counts = select(
        'count("event_id") AS "records", count("lat") AS "fixes", '
        'count("event_id") - count("lat") AS "without coordinates"',
        where=STUDY_AND_TAXON, group_by='"individual" fill(0)',
    )
    flagged = [
        ("B", "visible", "false", "not visible"),
        ("C", "manually_marked_outlier", "true", "manual outliers"),
        ("D", "algorithm_marked_outlier", "true", "algorithm outliers"),
    ]
    targets = [influxql_target("A", counts, result_format="table")] + [
        influxql_target(
            ref_id,
            select(f'count("{field}") AS "{label}"', where=f'"{field}" = {value} AND {STUDY_AND_TAXON}',
                   group_by='"individual"'),
            result_format="table",
        )
        for ref_id, field, value, label in flagged
    ]
    return panel(
        panel_id, "table", "Data quality per individual", grid, targets,
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ],
        options={"showHeader": True},
        fieldConfig={"defaults": {"decimals": 0, "noValue": "0"}, "overrides": []},
    )


def missing_coordinates_panel(*, panel_id: int, grid: dict) -> dict:
    """Fix attempts that failed (a record but no coordinates), per day and animal.

    fill(0), not fill(none): on a day when every attempt failed, count("lat") has no
    value and `count - count` would be null, hiding exactly the days this panel is for.
    Filled, such a day counts all its records; days without records show as 0 (no bar).
    """
    query = select(
        'count("event_id") - count("lat") AS "without coordinates"',
        where=STUDY_AND_TAXON, group_by='time(1d), "individual" fill(0)',
    )
    return panel(
        panel_id, "timeseries", "Records without coordinates per day", grid,
        [influxql_target("A", query, alias="$tag_individual")],
        fieldConfig={"defaults": {
            "unit": "short",
            "decimals": 0,
            "custom": {"drawStyle": "bars", "fillOpacity": 60, "stacking": {"mode": "normal", "group": "A"}},
        }, "overrides": []},
        options={"legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"},
                 "tooltip": {"mode": "multi", "sort": "desc"}},
    )


# --- colors by individual ------------------------------------------------------------------


def individual_color_mappings(individuals: Sequence[str]) -> list[dict]:
    """Value mappings that give each animal's markers a color.

    Grafana cannot color markers by a string field on its own (grafana/grafana#85045:
    every value gets the same color unless a value mapping names it). So:
    1. animals known when the dashboard is generated get a palette color each, in order;
    2. any other animal falls through to regex mappings keyed on the LAST character of
       its name (digit d -> palette[d], letters spread over the palette), so animals
       numbered 1, 2, 3... still differ without regenerating the dashboard.
    Grafana takes the first mapping that matches, so exact names win over the fallback.
    """
    known = sorted(set(individuals))
    exact = {name: {"color": PALETTE[i % len(PALETTE)], "index": i} for i, name in enumerate(known)}
    mappings: list[dict] = [{"type": "value", "options": exact}] if exact else []
    for slot, color in enumerate(PALETTE):
        mappings.append({
            "type": "regex",
            "options": {"pattern": f"/[{last_characters_for_slot(slot)}]$/",
                        "result": {"color": color, "index": len(known) + slot}},
        })
    return mappings


def last_characters_for_slot(slot: int) -> str:
    """Characters that send a name ending in them to palette slot `slot` (0-9)."""
    letters = [c for i, c in enumerate(string.ascii_lowercase) if i % len(PALETTE) == slot]
    return str(slot) + "".join(letters) + "".join(c.upper() for c in letters)


def individuals_in(csv_paths: Iterable[Path]) -> list[str]:
    """Distinct animal names in Movebank CSV exports (plain or .gz)."""
    names: set[str] = set()
    for path in csv_paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if INDIVIDUAL_COLUMN not in (reader.fieldnames or []):
                raise SystemExit(f"{path}: no {INDIVIDUAL_COLUMN!r} column; is it a Movebank export?")
            names.update(row[INDIVIDUAL_COLUMN] for row in reader if row[INDIVIDUAL_COLUMN])
    return sorted(names)


def render(dashboard: dict) -> str:
    """The exact text committed to the repository (stable key order, trailing newline)."""
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--individuals-from", type=Path, action="append", metavar="CSV",
        help="Movebank export(s) whose animals get their own marker colors "
             f"(default: {SAMPLE.relative_to(REPO)}); repeatable",
    )
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT, help=f"default: {OUTPUT.relative_to(REPO)}")
    parser.add_argument("--check", action="store_true", help="only compare with --output; exit 1 if it differs")
    args = parser.parse_args(argv)

    text = render(build_dashboard(individuals_in(args.individuals_from or [SAMPLE])))
    if args.check:
        if not args.output.exists() or args.output.read_text(encoding="utf-8") != text:
            print(f"{args.output} is stale: run python grafana/generate_dashboard.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
