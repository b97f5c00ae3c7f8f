"""Real Movebank files through the converter into a real InfluxDB 1.6.7, and every value back out.

The converter runs as a child process exactly as a user runs it. Its output goes to
the server with precision ms; then every series is queried back through /query and
each point is compared with the source CSV read by a small, independent reference
reader kept here (Python's csv module, one row at a time, no converter code).
"""

from __future__ import annotations

import calendar
import csv
import gzip
import json
import math
import re
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from support.data import ALBATROSSES, FISHERS, REPO, SAMPLE
from support.influxdb import InfluxDB1Server
from support.movebank_reference import BOOLEAN_WORDS, RENAMED, TAG_COLUMNS, column_kind

pytestmark = pytest.mark.influxdb

MEASUREMENT = "movebank"
CONVERT_TIMEOUT_S = 300
NS_PER_MS = 1_000_000

# The movebank preset as the contract states it (support/movebank_reference.py, not read from the
# preset file, so that a wrong preset is caught here).
TIME_COLUMN = "timestamp"
RENAMED_FIELDS = RENAMED

# Movebank-shaped rows with what real files rarely hold: tag values with spaces, commas,
# equals signs, a lone backslash and non-ASCII; string fields with quotes, backslashes and
# a tab; times before 1970 and at the top of InfluxDB's range; a series whose tag set is
# a subset of another's (Bob without taxon), so selecting one series by tags must not
# mix them up. Every row here is valid: the converter must accept all of them.
TRICKY_CSV = textwrap.dedent(
    """\
    event-id,visible,timestamp,location-long,location-lat,comments,eobs:status,ground-speed,gps:satellite-count,manually-marked-outlier,sensor-type,individual-taxon-canonical-name,tag-local-identifier,individual-local-identifier,study-name
    1,true,2020-01-01 00:00:00.000,-1.5,2.25,"say ""hi"", then leave",A\\B,1e-3,7,false,gps,Ciconia ciconia,"T,1=2",Bob the stork,Study\\with back
    2,false,1970-01-01 00:00:00.001,,,"C:\\path\\",é ü 鳥,-0,,true,gps,Ciconia ciconia,"T,1=2",Bob the stork,Study\\with back
    3,true,2262-04-11 23:47:16.854,180,-90,,,,12,,gps,,,ナオミ,Z
    4,true,1900-01-01 00:00:00.000,-180,90,"tab\tinside",x,123456789.123456789,,,gps,,,ナオミ,Z
    5,true,2020-01-01 00:00:00.000,0.1,0.2,,,,,,gps,,"T,1=2",Bob the stork,Study\\with back
    """
)

SOURCES = {
    "fishers-sample": SAMPLE,
    "fishers-new-york": FISHERS,
    "galapagos-albatrosses": ALBATROSSES,
    "tricky-values": None,  # TRICKY_CSV, written to a temp file
}


def field_key(column: str) -> str:
    """The contract's snake_case rule: lowercase, each run of other than a-z0-9 -> `_`, stripped."""
    return RENAMED_FIELDS.get(column) or re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")


def epoch_ms(text: str) -> int:
    """`YYYY-MM-DD HH:MM:SS.fff` in UTC to epoch milliseconds, by integer arithmetic."""
    moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")
    assert moment.microsecond % 1000 == 0, f"timestamp {text!r} has more than millisecond digits"
    return calendar.timegm(moment.timetuple()) * 1000 + moment.microsecond // 1000


def open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8", newline="") if path.suffix == ".gz" else open(
        path, encoding="utf-8", newline=""
    )


@dataclass
class Reference:
    """What the database must hold for one CSV file, worked out row by row."""

    rows: int = 0
    field_types: dict[str, str] = field(default_factory=dict)
    # (tag items, epoch ms) -> (CSV line number, {field key: value})
    points: dict[tuple[tuple[tuple[str, str], ...], int], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    per_series: Counter = field(default_factory=Counter)
    per_individual: Counter = field(default_factory=Counter)
    non_finite_cells: int = 0
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (first line, repeated line)


def column_types(header: list[str], rows: list[dict[str, str]]) -> dict[str, str]:
    """InfluxDB type of each field column (support.movebank_reference.column_kind)."""
    return {column: column_kind(column, [row[column] for row in rows])
            for column in header if column not in TAG_COLUMNS and column != TIME_COLUMN}


def read_reference(path: Path) -> Reference:
    with open_text(path) as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    types = column_types(header, rows)
    reference = Reference(rows=len(rows), field_types={field_key(c): t for c, t in types.items()})
    for line_number, row in enumerate(rows, start=2):
        tags = tuple(sorted((TAG_COLUMNS[c], row[c]) for c in TAG_COLUMNS if row.get(c)))
        fields: dict[str, Any] = {}
        for column, kind in types.items():
            text = row[column]
            if text == "":
                continue  # empty cell: no field
            if kind == "boolean":
                fields[field_key(column)] = BOOLEAN_WORDS[text]
            elif kind == "integer":
                fields[field_key(column)] = int(text)
            elif kind == "float":
                value = float(text)
                if not math.isfinite(value):
                    reference.non_finite_cells += 1  # NaN/Inf do not exist in line protocol
                    continue
                fields[field_key(column)] = value
            else:
                fields[field_key(column)] = text
        key = (tags, epoch_ms(row[TIME_COLUMN]))
        if key in reference.points:
            reference.duplicates.append((reference.points[key][0], line_number))
        reference.points[key] = (line_number, fields)
        reference.per_series[tags] += 1
        reference.per_individual[dict(tags).get("individual")] += 1
    return reference


@dataclass
class Conversion:
    source: Path
    output: Path
    summary: dict[str, Any]
    returncode: int
    stderr: str
    seconds: float


def run_converter(source: Path, work: Path) -> Conversion:
    output = work / "out.lp"
    summary_path = work / "summary.json"
    command = [
        sys.executable, "-m", "converter", "convert", str(source),
        "--preset", "movebank", "--precision", "ms",
        "-o", str(output), "--summary-json", str(summary_path),
        "--rejects", str(work / "rejects.csv"),  # never beside the checkout, even when rows are rejected
    ]  # fmt: skip
    began = time.monotonic()
    finished = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S, stdin=subprocess.DEVNULL
    )
    seconds = time.monotonic() - began
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return Conversion(source, output, summary, finished.returncode, finished.stderr, seconds)


@dataclass
class Loaded:
    name: str
    conversion: Conversion
    reference: Reference
    server: InfluxDB1Server
    db: str


@pytest.fixture(scope="module", params=list(SOURCES))
def loaded(request: pytest.FixtureRequest, influxdb: InfluxDB1Server, tmp_path_factory) -> Loaded:
    """One source converted, written to a fresh database with precision ms; dropped afterwards."""
    name = request.param
    work = tmp_path_factory.mktemp(name)
    source = SOURCES[name]
    if source is None:
        source = work / "tricky.csv"
        source.write_text(TRICKY_CSV, encoding="utf-8")
    elif source != SAMPLE:
        request.getfixturevalue("shared_movebank")  # skips, with its reason, where ../shared is absent
    conversion = run_converter(source, work)
    if conversion.returncode != 0:
        pytest.fail(f"converter exited {conversion.returncode} on {source}:\n{conversion.stderr[-3000:]}")
    db = "roundtrip_" + re.sub(r"[^a-z0-9]+", "_", name)
    influxdb.create_database(db)

    def drop() -> None:
        if influxdb.running:
            influxdb.drop_database(db)

    request.addfinalizer(drop)
    influxdb.write(conversion.output.read_bytes(), db, precision="ms")
    return Loaded(name, conversion, read_reference(source), influxdb, db)


def test_converter_summary_counts_every_row(loaded: Loaded) -> None:
    summary, reference = loaded.conversion.summary, loaded.reference
    lines_in_output = sum(1 for line in loaded.conversion.output.read_bytes().split(b"\n") if line)

    assert summary.get("rows_read") == reference.rows
    assert summary.get("lines_written") == reference.rows
    assert summary.get("rows_rejected") == 0
    assert lines_in_output == reference.rows
    # Each NaN cell is a field left out, and the summary must own up to it.
    assert summary.get("fields_dropped") == reference.non_finite_cells


def test_source_has_no_duplicate_points(loaded: Loaded) -> None:
    """Two rows with the same series and millisecond would merge into one point in InfluxDB
    (last write wins field by field): the comparisons below assume none exist."""
    assert loaded.reference.duplicates == []


def test_field_types_in_the_database(loaded: Loaded) -> None:
    present = {key for _, fields in loaded.reference.points.values() for key in fields}
    expected = {key: kind for key, kind in loaded.reference.field_types.items() if key in present}
    assert loaded.server.field_types(MEASUREMENT, loaded.db) == expected


def test_series_and_points_per_individual(loaded: Loaded) -> None:
    results = loaded.server.query(f'SELECT count("event_id") FROM "{MEASUREMENT}" GROUP BY *', db=loaded.db)
    # GROUP BY * lists every tag key of the measurement, "" where a series lacks it.
    per_series = {
        tuple(sorted((k, v) for k, v in series["tags"].items() if v)): series["values"][0][1]
        for series in results[0].get("series", [])
    }
    assert per_series == dict(loaded.reference.per_series)

    results = loaded.server.query(f'SELECT count("event_id") FROM "{MEASUREMENT}" GROUP BY "individual"', db=loaded.db)
    per_individual = {series["tags"]["individual"] or None: series["values"][0][1] for series in results[0]["series"]}
    assert per_individual == dict(loaded.reference.per_individual)


def same_value(expected: Any, got: Any) -> bool:
    """Equal value AND kind: True must not pass for 1, nor 1 for 1.0 of another type."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, float):
        # JSON writes an integral float64 without a fraction; the value is still exact.
        return isinstance(got, (int, float)) and float(got) == expected
    return type(expected) is type(got) and expected == got


def test_every_point_of_every_series_comes_back_exactly(loaded: Loaded) -> None:
    reference = loaded.reference
    mismatches: list[str] = []
    matched: set[tuple[tuple[tuple[str, str], ...], int]] = set()
    for tags in reference.per_series:
        for point in loaded.server.points(MEASUREMENT, loaded.db, tags=dict(tags)):
            got_tags = tuple(sorted((k, point.pop(k)) for k in list(point) if k in TAG_COLUMNS.values()))
            if got_tags != tags:
                continue  # a series with more tags matched the WHERE too; it is checked on its own turn
            time_ns = point.pop("time")
            key = (got_tags, time_ns // NS_PER_MS)
            if time_ns % NS_PER_MS or key not in reference.points or key in matched:
                mismatches.append(f"unexpected point {dict(got_tags)} at {time_ns} ns: {point}")
                continue
            matched.add(key)
            line_number, expected = reference.points[key]
            for name in sorted(expected.keys() | point.keys()):
                if name not in point or name not in expected or not same_value(expected[name], point[name]):
                    mismatches.append(
                        f"CSV line {line_number} field {name}: expected {expected.get(name, '<absent>')!r}, "
                        f"got {point.get(name, '<absent>')!r}"
                    )
    missing = sorted(line for key, (line, _) in reference.points.items() if key not in matched)
    assert not mismatches and not missing, (
        f"{len(mismatches)} mismatches, first 20:\n" + "\n".join(mismatches[:20]) + "\n"
        f"{len(missing)} CSV rows have no point in the database, first CSV lines: {missing[:20]}"
    )
