"""The independent reference reader of Movebank CSV: what InfluxDB must hold for a set of files.

Python's csv module, one row at a time, the Movebank mapping restated from the contract
(converter/presets/movebank.toml is not read). Used by the end-to-end tests through
Telegraf (tests/test_telegraf_e2e.py into InfluxDB 1.6.7, tests/test_stack_v2.py into
InfluxDB 2): each compares the database with `Reference.points`, point by point.
"""

from __future__ import annotations

import csv
import gzip
import math
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

TAG_COLUMNS = {
    "individual-local-identifier": "individual",
    "sensor-type": "sensor",
    "study-name": "study",
    "tag-local-identifier": "tag",
    "individual-taxon-canonical-name": "taxon",
}
RENAMED = {"location-lat": "lat", "location-long": "lon"}
BOOLEAN_COLUMNS = {"visible", "manually-marked-outlier", "algorithm-marked-outlier", "import-marked-outlier"}
INTEGER_COLUMNS = {"event-id", "eobs:battery-voltage", "eobs:fix-battery-voltage", "eobs:key-bin-checksum",
                   "eobs:type-of-fix", "eobs:used-time-to-get-fix", "gps:satellite-count"}
STRING_COLUMNS = {"behavioural-classification", "comments", "eobs:status", "eobs:start-timestamp"}

Series = tuple[tuple[str, str], ...]


def field_key(column: str) -> str:
    return RENAMED.get(column) or re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")


EPOCH = datetime(1970, 1, 1)
MICROSECOND = timedelta(microseconds=1)


def epoch_ns(text: str) -> int:
    """`YYYY-MM-DD HH:MM:SS.fff` (UTC) in epoch nanoseconds."""
    return (datetime.fromisoformat(text) - EPOCH) // MICROSECOND * 1000


def canonical(fields: dict[str, Any]) -> str:
    """One comparable text per point: typed values (repr tells 1 from 1.0 from True), keys sorted."""
    return ",".join(f"{key}={value!r}" for key, value in sorted(fields.items()))


BOOLEAN_WORDS = {"true": True, "false": False}


class Reference:
    """Per series, per timestamp (ns): the canonical fields of the point the CSV row must become."""

    def __init__(self) -> None:
        self.points: dict[Series, dict[int, str]] = {}
        self.kinds: dict[str, str] = {}  # field key -> "float" | "integer" | "boolean" | "string"
        self.rows = 0

    def add_file(self, path: Path, *, skip_lines: frozenset[int] = frozenset()) -> Reference:
        """Every row of `path` except those on `skip_lines` (physical lines of rows execd must reject)."""
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            rows = [(reader.line_num, row) for row in reader]
        rows = [(line, row) for line, row in rows if line not in skip_lines]
        kinds = {index: column_kind(column, [row[index] for _, row in rows])
                 for index, column in enumerate(header) if column not in TAG_COLUMNS and column != "timestamp"}
        self.kinds.update({field_key(header[i]): kind for i, kind in kinds.items()})
        convert = {"boolean": BOOLEAN_WORDS.__getitem__, "integer": int, "float": float, "string": str}
        # (key, column, converter) in key order, so each point's text comes out sorted
        columns = sorted((field_key(header[i]), i, convert[kind]) for i, kind in kinds.items())
        tags = [(TAG_COLUMNS[c], header.index(c)) for c in sorted(TAG_COLUMNS, key=TAG_COLUMNS.get) if c in header]
        time_index = header.index("timestamp")
        for line, row in rows:
            series_tags = tuple((key, row[i]) for key, i in tags if row[i])
            fields = []
            for key, i, to_value in columns:
                if row[i]:
                    value = to_value(row[i])
                    if not (isinstance(value, float) and not math.isfinite(value)):
                        fields.append(f"{key}={value!r}")
            series = self.points.setdefault(series_tags, {})
            time_ns = epoch_ns(row[time_index])
            assert time_ns not in series, f"{path}:{line}: two rows of one series at one time would merge"
            series[time_ns] = ",".join(fields)
            self.rows += 1
        return self

    def per_series(self) -> dict[Series, int]:
        return {series: len(points) for series, points in self.points.items()}


def column_kind(column: str, cells: list[str]) -> str:
    """A field column's InfluxDB type: the contract's lists, else float if every non-empty cell is a number."""
    if column in BOOLEAN_COLUMNS:
        return "boolean"
    if column in INTEGER_COLUMNS:
        return "integer"
    if column in STRING_COLUMNS:
        return "string"
    return "float" if all(is_number(cell) for cell in cells if cell) else "string"


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def typed(kind: str | None, value: Any) -> Any:
    """A value from InfluxDB's JSON as the reference types it (JSON writes 42.0 as 42)."""
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value
