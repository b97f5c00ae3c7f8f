"""The "Movebank tracks" dashboard's queries against real data in real InfluxDB 1.6.7 and 2.8.0.

The bundled sample and both shared Movebank files go through the converter into a
database named `movebank` on InfluxDB 1.6.7, and into the bucket `movebank` of an
InfluxDB 2 onboarded as the compose stack's is: there the dashboard reads InfluxQL
through the bucket's DBRP mapping, where the InfluxQL database name is the bucket name,
with the data source's `Authorization: Token ...` header. Every test runs against both. A small file of a third,
made-up study adds what the real files lack (visible=false, outlier flags) and names
that need escaping in a regex.

For several selections a person would make, every variable query and every panel query
is taken from the dashboard JSON, made into what Grafana sends (tests/support/
grafana_queries.py: variables in Grafana's regex format, $timeFilter, $__interval), sent
to /query as Grafana's backend sends it, and its answer compared with what the source CSV files say, read here with
Python's csv module. A query may come back empty only where the CSV says there is
nothing to show; each such case is named below.
"""

from __future__ import annotations

import calendar
import csv
import gzip
import json
import re
import subprocess
import sys
import textwrap
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from support.data import ALBATROSSES, FISHERS, REPO, SAMPLE
from support.grafana_queries import (
    ALL,
    DashboardQuery,
    GrafanaQueryError,
    auto_interval_ms,
    query_like_grafana,
    runnable_queries,
)
from support.influxdb import InfluxDB1Server, require_influxd
from support.influxdb2 import BUCKET, InfluxDB2Server, require_influxd2

pytestmark = pytest.mark.influxdb

DASHBOARD = REPO / "grafana" / "dashboards" / "movebank-tracks.json"
DATABASE = "movebank"  # = the bucket name, as the data source's dbName
DAY_MS = 86_400_000
CONVERT_TIMEOUT_S = 300

FISHERS_STUDY = "Martes pennanti LaPoint New York"
ALBATROSS_STUDY = "Galapagos Albatrosses"
FLAGS_STUDY = "Storks (flag test) v1.2"

# A made-up study with what the real exports lack: a record that is not visible, manual
# and algorithm outliers, an animal whose every fix attempt failed, and regex
# metacharacters and a slash in the names.
FLAGS_CSV = textwrap.dedent(
    f"""\
    event-id,visible,timestamp,location-long,location-lat,ground-speed,height-above-ellipsoid,manually-marked-outlier,algorithm-marked-outlier,sensor-type,individual-taxon-canonical-name,tag-local-identifier,individual-local-identifier,study-name
    9000001,true,2020-03-01 06:00:00.000,8.5,47.4,1.5,420,,,gps,Ciconia ciconia,T-1,A+1/2,{FLAGS_STUDY}
    9000002,false,2020-03-01 07:00:00.000,8.6,47.5,2.5,430,true,,gps,Ciconia ciconia,T-1,A+1/2,{FLAGS_STUDY}
    9000003,true,2020-03-01 08:00:00.000,8.7,47.6,,,false,true,gps,Ciconia ciconia,T-1,A+1/2,{FLAGS_STUDY}
    9000004,true,2020-03-02 06:00:00.000,,,,,,,gps,Ciconia ciconia,T-1,A+1/2,{FLAGS_STUDY}
    9000005,true,2020-03-02 06:30:00.000,8.8,47.7,3.0,440,,true,gps,Ciconia ciconia,T-2,B.b,{FLAGS_STUDY}
    9000006,true,2020-03-02 07:30:00.000,,,,,,,gps,Ciconia ciconia,T-2,B.b,{FLAGS_STUDY}
    9000007,true,2020-03-01 09:00:00.000,,,,,,,gps,Ciconia ciconia,T-3,C never fixed,{FLAGS_STUDY}
    9000008,true,2020-03-01 10:00:00.000,,,,,,,gps,Ciconia ciconia,T-3,C never fixed,{FLAGS_STUDY}
    """
)


# --- the source, read independently ------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    study: str
    taxon: str
    individual: str
    time: int  # epoch ms
    event_id: int
    lat: float | None
    lon: float | None
    ground_speed: float | None
    height: float | None
    visible: bool | None
    manual_outlier: bool | None
    algorithm_outlier: bool | None


def _float(row: dict[str, str], column: str) -> float | None:
    text = row.get(column, "")
    return float(text) if text else None


def _bool(row: dict[str, str], column: str) -> bool | None:
    text = row.get(column, "")
    return {"true": True, "false": False}[text] if text else None


def _epoch_ms(text: str) -> int:
    moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")
    return calendar.timegm(moment.timetuple()) * 1000 + moment.microsecond // 1000


def read_records(path: Path) -> list[Record]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="", encoding="utf-8") as handle:
        return [
            Record(
                study=row["study-name"], taxon=row["individual-taxon-canonical-name"],
                individual=row["individual-local-identifier"], time=_epoch_ms(row["timestamp"]),
                event_id=int(row["event-id"]), lat=_float(row, "location-lat"), lon=_float(row, "location-long"),
                ground_speed=_float(row, "ground-speed"), height=_float(row, "height-above-ellipsoid"),
                visible=_bool(row, "visible"), manual_outlier=_bool(row, "manually-marked-outlier"),
                algorithm_outlier=_bool(row, "algorithm-marked-outlier"),
            )
            for row in csv.DictReader(handle)
        ]


# --- the database ----------------------------------------------------------------------------


@dataclass
class Loaded:
    server: InfluxDB1Server | InfluxDB2Server
    records: list[Record]
    headers: dict[str, str]  # what the data source adds to every request

    def query(self, influxql: str) -> list[dict]:
        """The series of a single statement, sent and answered as Grafana's data source does it."""
        return query_like_grafana(self.server.url, DATABASE, influxql, headers=self.headers)


def convert(source: Path) -> bytes:
    done = subprocess.run(
        [sys.executable, "-m", "converter", "convert", str(source), "--preset", "movebank", "--precision", "ms", "-q"],
        cwd=REPO, capture_output=True, timeout=CONVERT_TIMEOUT_S, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


@pytest.fixture(scope="module", params=["influxdb1", pytest.param("influxdb2", marks=pytest.mark.influxdb2)])
def loaded(request, shared_movebank, tmp_path_factory) -> Iterator[Loaded]:
    """The same four files in InfluxDB 1.6.7's database `movebank` or InfluxDB 2's bucket `movebank`."""
    flags = tmp_path_factory.mktemp("flags") / "storks.csv"
    flags.write_text(FLAGS_CSV, encoding="utf-8")
    server: InfluxDB1Server | InfluxDB2Server
    if request.param == "influxdb1":
        require_influxd()
        server, headers = InfluxDB1Server(), {}
    else:
        # Its own server, onboarded as the stack's (bucket movebank), not the session's shared one.
        server = InfluxDB2Server(influxd=require_influxd2())
        headers = {"Authorization": f"Token {server.token}"}  # grafana/provisioning/datasources/influxdb.yaml
        assert server.bucket == BUCKET == DATABASE
    try:
        server.start()
        if request.param == "influxdb1":
            server.create_database(DATABASE)
        for source in (SAMPLE, FISHERS, ALBATROSSES, flags):
            server.write(convert(source), DATABASE, precision="ms")
        # The sample is a slice of the fishers file: loading both leaves each point once.
        records = read_records(FISHERS) + read_records(ALBATROSSES) + read_records(flags)
        assert set(read_records(SAMPLE)) <= set(records)
        yield Loaded(server, records, headers)
    finally:
        server.close()


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


# --- selections a person makes -----------------------------------------------------------------


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Selection:
    name: str
    studies: tuple[str, ...] | None  # None: "All"
    taxa: tuple[str, ...] | None
    time_from: datetime
    time_to: datetime

    def picked(self, values: tuple[str, ...] | None) -> str | list[str]:
        return ALL if values is None else list(values)


SELECTIONS = [
    # Each study over its own dates (the dashboard opens on "All" and the first animal).
    Selection("fishers", (FISHERS_STUDY,), None, utc(2009, 2, 11), utc(2011, 5, 29)),
    Selection("albatrosses", (ALBATROSS_STUDY,), None, utc(2008, 5, 31), utc(2008, 8, 4)),
    Selection("storks", (FLAGS_STUDY,), None, utc(2020, 3, 1), utc(2020, 3, 3)),
    # Everything at once, over all the years.
    Selection("all", None, None, utc(2008, 1, 1), utc(2021, 1, 1)),
    # Two studies and their two taxa picked by name (Grafana sends "(a|b)").
    Selection("two-studies", (FISHERS_STUDY, ALBATROSS_STUDY), ("Martes pennanti", "Phoebastria irrorata"),
              utc(2008, 1, 1), utc(2012, 1, 1)),
    # One month of the fishers: the time filter must cut the answers.
    Selection("fishers-february-2011", (FISHERS_STUDY,), ("Martes pennanti",), utc(2011, 2, 1), utc(2011, 3, 1)),
]


@dataclass
class Context:
    """One selection made concrete: the records it shows, the animal picked, the interval."""

    selection: Selection
    from_ms: int
    to_ms: int
    individual: str
    in_view: list[Record]  # study, taxon and time range
    interval_ms: int

    @property
    def animal(self) -> list[Record]:
        return [r for r in self.in_view if r.individual == self.individual]

    def by_individual(self, keep: Callable[[Record], bool] = lambda r: True) -> dict[str, list[Record]]:
        found: dict[str, list[Record]] = defaultdict(list)
        for record in self.in_view:
            if keep(record):
                found[record.individual].append(record)
        return dict(found)


def in_selection(record: Record, selection: Selection) -> bool:
    return ((selection.studies is None or record.study in selection.studies)
            and (selection.taxa is None or record.taxon in selection.taxa))


# --- what each query must answer -----------------------------------------------------------------


def only_series(series: list[dict], columns: list[str]) -> list[list]:
    assert len(series) == 1, f"expected one frame, got {len(series)}"
    assert series[0]["columns"] == columns
    return series[0]["values"]


def series_by_individual(series: list[dict], columns: list[str]) -> dict[str, list[list]]:
    found = {}
    for one in series:
        assert one["columns"] == columns
        found[one["tags"]["individual"]] = one["values"]
    return found


def check_tag_values(series: list[dict], key: str, expected: set[str]) -> None:
    values = only_series(series, ["key", "value"])
    assert {k for k, _ in values} == {key}
    assert sorted(v for _, v in values) == sorted(expected)


def check_markers(series, ctx: Context) -> None:
    """Geomap markers: one frame of lat, lon and individual; every fix with coordinates, no other row."""
    rows = only_series(series, ["time", "lat", "lon", "individual"])
    expected = sorted((r.time, r.lat, r.lon, r.individual) for r in ctx.in_view if r.lat is not None)
    assert sorted(map(tuple, rows)) == expected


def check_route(series, ctx: Context) -> None:
    """Geomap route: one frame of lat and lon of the picked animal, in time order (the line's order)."""
    rows = only_series(series, ["time", "lat", "lon"])
    assert rows == sorted([[r.time, r.lat, r.lon] for r in ctx.animal if r.lat is not None])


def check_last_fix(series, ctx: Context) -> None:
    """Table: per animal the time, lat and lon of its last fix (renamed by the panel's organize step)."""
    found = series_by_individual(series, ["time", "lat", "lon"])
    expected = {}
    for individual, fixes in ctx.by_individual(lambda r: r.lat is not None).items():
        last = max(fixes, key=lambda r: r.time)
        expected[individual] = [[last.time, last.lat, last.lon]]
    assert found == expected


def check_daily_fixes(series, ctx: Context) -> None:
    """Bars: fixes per UTC day per animal, days without a fix left out."""
    found = series_by_individual(series, ["time", "fixes"])
    expected = {ind: sorted(Counter(r.time // DAY_MS * DAY_MS for r in fixes).items())
                for ind, fixes in ctx.by_individual(lambda r: r.lat is not None).items()}
    assert {ind: [tuple(row) for row in rows] for ind, rows in found.items()} == expected


def mean_per_interval(ctx: Context, value: Callable[[Record], float | None]) -> list[tuple[int, float]]:
    buckets: dict[int, list[float]] = defaultdict(list)
    for record in ctx.animal:
        if value(record) is not None:
            buckets[record.time // ctx.interval_ms * ctx.interval_ms].append(value(record))
    return [(start, sum(values) / len(values)) for start, values in sorted(buckets.items())]


def check_mean(label: str, value: Callable[[Record], float | None]) -> Callable[[list, Context], None]:
    """Line: the mean of one field of the picked animal per $__interval (empty when it has none)."""

    def check(series, ctx: Context) -> None:
        expected = mean_per_interval(ctx, value)
        if not expected:
            # The data lacks it: the fishers' ground-speed and height columns are empty
            # throughout, and an animal with no such value has nothing to draw.
            assert series == []
            return
        rows = only_series(series, ["time", label])
        assert [row[0] for row in rows] == [start for start, _ in expected]
        assert [row[1] for row in rows] == pytest.approx([mean for _, mean in expected], rel=1e-12)

    return check


def check_quality_counts(series, ctx: Context) -> None:
    """Table: records, fixes and records without coordinates per animal."""
    found = series_by_individual(series, ["time", "records", "fixes", "without coordinates"])
    expected = {}
    for individual, records in ctx.by_individual().items():
        fixes = sum(r.lat is not None for r in records)
        expected[individual] = (len(records), fixes, len(records) - fixes)
    assert {ind: tuple(rows[0][1:]) for ind, rows in found.items()} == expected
    assert all(len(rows) == 1 for rows in found.values())


def check_flag_count(label: str, flagged: Callable[[Record], bool]) -> Callable[[list, Context], None]:
    """Table: records flagged one way, per animal; merged into the counts table by Grafana."""

    def check(series, ctx: Context) -> None:
        expected = {ind: len(records) for ind, records in ctx.by_individual(flagged).items()}
        found = series_by_individual(series, ["time", label])
        # Empty where no record in view is flagged: the two real exports have no
        # visible=false record and no outlier flag (the panel shows its noValue, 0).
        assert {ind: rows[0][1] for ind, rows in found.items()} == expected

    return check


def check_daily_without_coordinates(series, ctx: Context) -> None:
    """Bars: per UTC day and animal, records minus fixes; 0 on days without records (fill(0)).

    A day on which every fix attempt failed has records and no fix: it must count them all.
    """
    found = series_by_individual(series, ["time", "without coordinates"])
    first, last = (ctx.from_ms // DAY_MS * DAY_MS, ctx.to_ms // DAY_MS * DAY_MS)
    expected = {}
    for individual, records in ctx.by_individual().items():
        days = Counter({day: 0 for day in range(first, last + DAY_MS, DAY_MS)})
        for record in records:
            days[record.time // DAY_MS * DAY_MS] += record.lat is None
        expected[individual] = sorted(days.items())
    assert {ind: [tuple(row) for row in rows] for ind, rows in found.items()} == expected


PANEL_CHECKS: dict[tuple[int, str], Callable[[list, Context], None]] = {
    (1, "A"): check_markers,
    (1, "B"): check_route,
    (2, "A"): check_last_fix,
    (3, "A"): check_daily_fixes,
    (4, "A"): check_mean("ground speed", lambda r: r.ground_speed),
    (5, "A"): check_mean("height", lambda r: r.height),
    (6, "A"): check_quality_counts,
    (6, "B"): check_flag_count("not visible", lambda r: r.visible is False),
    (6, "C"): check_flag_count("manual outliers", lambda r: r.manual_outlier is True),
    (6, "D"): check_flag_count("algorithm outliers", lambda r: r.algorithm_outlier is True),
    (7, "A"): check_daily_without_coordinates,
}
# Queries that must answer with nothing, per selection, because the data has nothing to
# show (test_expected_emptiness_is_what_the_data_lacks checks the reasons in the CSV):
# - 4 A, 5 A: the fishers' ground-speed and height columns are empty in every row;
# - 6 B, C, D: the real exports have no visible=false record and no outlier flag.
# Every other query must return rows.
FISHER_GAPS = {(4, "A"), (5, "A"), (6, "B"), (6, "C"), (6, "D")}
NO_FLAGS = {(6, "B"), (6, "C"), (6, "D")}
EXPECTED_EMPTY = {
    "fishers": FISHER_GAPS,
    "albatrosses": NO_FLAGS,
    "storks": set(),
    "all": set(),  # the first animal of the list is an albatross; the storks have flags
    "two-studies": NO_FLAGS,  # the first animal is an albatross
    "fishers-february-2011": FISHER_GAPS,
}

_PANEL_ORIGIN = re.compile(r"panel (\d+) \(.*\) (\w+)$")


def panel_key(query: DashboardQuery) -> tuple[int, str]:
    match = _PANEL_ORIGIN.match(query.origin)
    assert match, query.origin
    return int(match.group(1)), match.group(2)


# --- the tests -------------------------------------------------------------------------------------


def test_every_dashboard_query_has_a_check(dashboard):
    queries = runnable_queries(dashboard, selections={"study": ALL, "taxon": ALL, "individual": "x"},
                               time_from=utc(2020, 1, 1), time_to=utc(2020, 1, 2))
    panels = {panel_key(q) for q in queries if q.origin.startswith("panel ")}
    variables = {q.origin for q in queries if q.origin.startswith("variable ")}

    assert panels == set(PANEL_CHECKS)
    assert variables == {"variable study", "variable taxon", "variable individual"}


@pytest.mark.parametrize("selection", SELECTIONS, ids=[s.name for s in SELECTIONS])
def test_every_query_answers_what_the_csv_says(loaded, dashboard, selection):
    records = loaded.records
    studies = {r.study for r in records}
    taxa = {r.taxon for r in records if selection.studies is None or r.study in selection.studies}
    individuals = {r.individual for r in records if in_selection(r, selection)}

    # The pickers first, in Grafana's order: each list depends on the picks before it.
    picks = {"study": selection.picked(selection.studies), "taxon": selection.picked(selection.taxa)}
    variable_queries = {q.origin: q for q in runnable_queries(
        dashboard, selections={**picks, "individual": "unused"},
        time_from=selection.time_from, time_to=selection.time_to,
    ) if q.origin.startswith("variable ")}
    check_tag_values(loaded.query(variable_queries["variable study"].influxql), "study", studies)
    check_tag_values(loaded.query(variable_queries["variable taxon"].influxql), "taxon", taxa)
    individual_series = loaded.query(variable_queries["variable individual"].influxql)
    check_tag_values(individual_series, "individual", individuals)
    # The single-value picker starts on the first value of its sorted list.
    individual = sorted(value for _, value in individual_series[0]["values"])[0]

    interval_ms = auto_interval_ms(selection.time_from, selection.time_to, max_data_points=1000)
    from_ms, to_ms = (int(t.timestamp() * 1000) for t in (selection.time_from, selection.time_to))
    ctx = Context(selection, from_ms, to_ms, individual,
                  [r for r in records if in_selection(r, selection) and from_ms <= r.time <= to_ms], interval_ms)
    assert ctx.in_view and ctx.animal, "a selection must show something"

    problems = []
    for query in runnable_queries(dashboard, selections={**picks, "individual": individual},
                                  time_from=selection.time_from, time_to=selection.time_to):
        if not query.origin.startswith("panel "):
            continue
        key = panel_key(query)
        try:
            series = loaded.query(query.influxql)
            if key in EXPECTED_EMPTY[selection.name]:
                assert series == [], "rows where the data has nothing to show"
            else:
                assert series, "no rows"
            PANEL_CHECKS[key](series, ctx)
        except Exception as exc:  # collect them all: one run shows every broken panel
            problems.append(f"{query.origin}: {type(exc).__name__}: {exc}\n    {query.influxql}")
    assert not problems, "\n".join(problems)


def test_expected_emptiness_is_what_the_data_lacks(loaded):
    """The empty answers allowed above, checked against the CSV: nothing to show there."""
    fishers = [r for r in loaded.records if r.study == FISHERS_STUDY]
    real = [r for r in loaded.records if r.study != FLAGS_STUDY]

    assert all(r.ground_speed is None and r.height is None for r in fishers)
    assert not any(r.visible is False or r.manual_outlier or r.algorithm_outlier for r in real)
    # The individual picker starts on the first name of its sorted list: an albatross when
    # albatrosses are in view, a fisher (F1) when only fishers are.
    assert sorted({r.individual for r in loaded.records})[:5] == ["2131-2131", "4261-2228", "A+1/2", "B.b",
                                                                  "C never fixed"]


@pytest.mark.parametrize("loaded", ["influxdb2"], indirect=True)
def test_influxdb2_answers_the_dashboard_only_with_the_data_sources_token(loaded, dashboard):
    """The 2.x answers above came through the token header: without it the same query is refused."""
    variable = next(q for q in runnable_queries(dashboard, selections={"study": ALL, "taxon": ALL, "individual": "x"},
                                                time_from=utc(2020, 1, 1), time_to=utc(2020, 1, 2))
                    if q.origin == "variable study")
    assert loaded.query(variable.influxql)
    with pytest.raises(GrafanaQueryError, match=r"/query answered 401 .*unauthorized"):
        query_like_grafana(loaded.server.url, DATABASE, variable.influxql, headers={})


def test_interval_and_time_filter_reach_the_server_as_grafana_sends_them(dashboard):
    selection = SELECTIONS[1]
    picks = {"study": [ALBATROSS_STUDY], "taxon": ALL, "individual": "2131-2131"}
    queries = runnable_queries(dashboard, selections=picks, time_from=selection.time_from, time_to=selection.time_to)
    speed = next(q for q in queries if panel_key_or_none(q) == (4, "A"))

    assert "GROUP BY time(2h) fill(none)" in speed.influxql
    assert "time >= 1212192000000ms and time <= 1217808000000ms" in speed.influxql
    assert '"study" =~ /^Galapagos Albatrosses$/' in speed.influxql


def panel_key_or_none(query: DashboardQuery) -> tuple[int, str] | None:
    return panel_key(query) if query.origin.startswith("panel ") else None
