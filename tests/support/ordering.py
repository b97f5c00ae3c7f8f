"""A CSV whose every point appears twice with different values, to prove that the copy written
last in the file is the one InfluxDB keeps (it keeps the last write of a point).

Points come in groups: the first copies of a group's points, then their second copies, so
the two copies of a point are `group` rows apart: further than one request of a small
`--batch-lines`, near enough that requests on two connections carrying them would be in
flight side by side. A sender that let copies of one point travel on different connections
would see some second copies land first (tests/test_v1_write_path.py shows one doing it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DUPLICATES_MEASUREMENT = "dup"
SERIES = 4
START_MS = 1_600_000_000_000


def duplicates_csv(path: Path, *, points: int, group: int = 60) -> Path:
    """`points` points in SERIES series, each written twice: copy 1 (value p + 0.25), then copy 2
    (value p + 0.75), `group` rows later."""
    rows = ["series,time,value,copy"]
    for first in range(0, points, group):
        block = range(first, min(first + group, points))
        for copy, offset in ((1, 0.25), (2, 0.75)):
            rows += [f"S{p % SERIES},{START_MS + (p // SERIES) * 1_000},{p + offset},{copy}" for p in block]
    path.write_text("\n".join(rows) + "\n")
    return path


def duplicates_flags() -> list[str]:
    return ["-m", DUPLICATES_MEASUREMENT, "-t", "series", "-f", "value:float", "-f", "copy:integer",
            "--time-column", "time", "--time-format", "epoch_ms", "--precision", "ms"]


def survivors_query() -> str:
    return f'SELECT "value", "copy" FROM "{DUPLICATES_MEASUREMENT}" GROUP BY "series"'


def wrong_survivors(results: list[dict[str, Any]]) -> list[tuple[str, Any, float, int]]:
    """The points (series, time, value, copy) whose surviving copy is not the second one."""
    wrong = []
    for series in results[0].get("series", []):
        for time, value, copy in series["values"]:
            if copy != 2 or value % 1 != 0.75:
                wrong.append((series["tags"]["series"], time, value, copy))
    return wrong
