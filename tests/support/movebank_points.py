"""What a Movebank CSV should become in InfluxDB, read independently of csv2lp (Python's csv module),
and the same points as a database answers them: both as {individual: sorted fixes}.

Shared by the end-to-end write tests (tests/test_*_write_path.py), so each compares the
database with the source the same way, series by series.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import epoch_ms, read_rows

MEASUREMENT = "movebank"


@dataclass(frozen=True, order=True)
class Fix:
    time: int  # in the unit the test compares in
    event_id: int
    lat: float | None
    lon: float | None


def expected_series(path: Path, *, unit_ms: int = 1, epoch: str = "ms") -> dict[str, list[Fix]]:
    """{individual: fixes sorted by time}; times floored to `unit_ms`, expressed in `epoch` units."""
    scale = {"ms": 1, "ns": 1_000_000}[epoch]
    series: dict[str, list[Fix]] = defaultdict(list)
    for row in read_rows(path):
        floored = epoch_ms(row["timestamp"]) // unit_ms * unit_ms
        series[row["individual-local-identifier"]].append(Fix(
            floored * scale,
            int(row["event-id"]),
            float(row["location-lat"]) if row["location-lat"] else None,
            float(row["location-long"]) if row["location-long"] else None,
        ))
    return {individual: sorted(fixes) for individual, fixes in series.items()}


def expected_counts(path: Path) -> dict[str, int]:
    """{individual: rows} of a Movebank CSV (every row of a generated file is a distinct point)."""
    counts: dict[str, int] = defaultdict(int)
    for row in read_rows(path):
        counts[row["individual-local-identifier"]] += 1
    return dict(counts)


SERIES_QUERY = f'SELECT "event_id", "lat", "lon" FROM "{MEASUREMENT}" GROUP BY "individual"'
COUNT_QUERY = f'SELECT count("event_id") FROM "{MEASUREMENT}"'
COUNTS_QUERY = f'SELECT count("event_id") FROM "{MEASUREMENT}" GROUP BY "individual"'


def series_of(results: list[dict[str, Any]]) -> dict[str, list[Fix]]:
    """The answer to SERIES_QUERY as {individual: sorted fixes}."""
    found: dict[str, list[Fix]] = {}
    for series in results[0].get("series", []):
        found[series["tags"]["individual"]] = sorted(Fix(*values) for values in series["values"])
    return found


def total_of(results: list[dict[str, Any]]) -> int:
    """The answer to COUNT_QUERY as a number (0 when the measurement has no points)."""
    series = results[0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


def counts_of(results: list[dict[str, Any]]) -> dict[str, int]:
    """The answer to COUNTS_QUERY as {individual: points}."""
    return {series["tags"]["individual"]: int(series["values"][0][1]) for series in results[0].get("series", [])}
