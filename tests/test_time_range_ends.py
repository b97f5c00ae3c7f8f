"""Times past the ends of line protocol's range after arithmetic are rejected rows, never written.

Regressions: `--duplicates nudge` on copies of a row at the last representable time raised
OverflowError at -p ns, and at -p s wrote `9223372037` (2262-04-11T23:47:17Z, refused by
InfluxDB); `--timezone` moved times past the ends and Arrow's assume_timezone wrapped them
round to the other end (2262-04-11 23:00 in New York was written as a time in 1677).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest

from converter.books.duplicates import DuplicateMode, DuplicateTracker
from converter.encode.time_text import LP_MAX_NS, LP_MIN_NS
from converter.encode.timestamps import OUT_OF_RANGE, lowest_ns, parse_times
from converter.mapping import Precision

LAST = "2262-04-11T23:47:16.854775806Z"  # LP_MAX_NS


def _csv2lp(tmp_path, text: str, *args: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    path = tmp_path / "in.csv"
    path.write_text(textwrap.dedent(text))
    rejects = tmp_path / "rejects.csv"
    run = subprocess.run([sys.executable, "-m", "converter", str(path), "-m", "m", "-t", "host", "--rejects",
                          str(rejects), "--summary-json", str(tmp_path / "s.json"), *args],
                         capture_output=True, text=True, timeout=120, env=os.environ)
    rows = list(csv.reader(rejects.open(newline=""))) if rejects.exists() else []
    return run, rows


def _books(tmp_path) -> tuple[int, int, int]:
    import json
    summary = json.loads((tmp_path / "s.json").read_text())
    return summary["rows_read"], summary["lines_written"], summary["rows_rejected"]


@pytest.mark.parametrize(("precision", "first_line"), [
    ("ns", f"m,host=a v=1 {LP_MAX_NS}"),
    ("us", f"m,host=a v=1 {LP_MAX_NS // 1000}"),
    ("s", f"m,host=a v=1 {LP_MAX_NS // 10**9}"),
])
def test_nudge_at_the_last_time_rejects_the_copies_it_cannot_move(tmp_path, precision, first_line):
    run, rejects = _csv2lp(tmp_path, f"""\
        time,host,v
        {LAST},a,1
        {LAST},a,2
        {LAST},a,3
        {LAST},b,4
        """, "--duplicates", "nudge", "-p", precision)
    assert "Traceback" not in run.stderr
    assert run.returncode == 3, run.stderr
    assert run.stdout.splitlines() == [first_line, first_line.replace("host=a v=1", "host=b v=4")]
    assert [row[1] for row in rejects[1:]] == ["3", "4"]
    assert all(row[2].startswith("time past the end of line protocol's range after --duplicates nudge")
               for row in rejects[1:])
    assert _books(tmp_path) == (4, 2, 2)
    assert "InfluxDB keeps only the last" not in run.stderr  # they were not written, nothing is overwritten


def test_nudge_moves_copies_into_the_last_free_units_and_rejects_the_rest(tmp_path):
    # Two units are left before the end at -p s: two copies move there, the third is rejected.
    run, rejects = _csv2lp(tmp_path, """\
        time,host,v
        2262-04-11T23:47:14Z,a,1
        2262-04-11T23:47:14Z,a,2
        2262-04-11T23:47:14Z,a,3
        2262-04-11T23:47:14Z,a,4
        """, "--duplicates", "nudge", "-p", "s")
    assert run.returncode == 3, run.stderr
    assert [line.split()[-1] for line in run.stdout.splitlines()] == ["9223372034", "9223372035", "9223372036"]
    assert [row[1] for row in rejects[1:]] == ["5"]
    assert _books(tmp_path) == (4, 3, 1)


def test_the_tracker_never_moves_a_time_past_last_time():
    tracker = DuplicateTracker(mode=DuplicateMode.NUDGE, last_time=12)
    result = tracker.check(np.zeros(5, dtype=np.int64), ["a"], np.array([10, 10, 10, 10, 12], dtype=np.int64))
    assert result.times.tolist() == [10, 11, 10, 10, 12]
    assert result.nudged.tolist() == [False, True, False, False, False]
    assert result.beyond is not None and result.beyond.tolist() == [False, False, True, True, False]


def test_many_copies_of_one_row_are_nudged_in_linear_time():
    # The walk past taken times is shared: 20,000 copies took ~200 million set lookups before.
    tracker = DuplicateTracker(mode=DuplicateMode.NUDGE)
    n = 20_000
    import time
    started = time.perf_counter()
    result = tracker.check(np.zeros(n, dtype=np.int64), ["a"], np.full(n, 5, dtype=np.int64))
    assert time.perf_counter() - started < 2.0
    assert result.times.tolist() == list(range(5, 5 + n))


# Fixed-offset zones (POSIX signs: Etc/GMT+5 is UTC-5), so that the expected time is plain arithmetic.
ZONES = {"Etc/GMT+5": -5 * 3600, "Etc/GMT-14": 14 * 3600, "Etc/GMT-1": 3600, "Etc/GMT+12": -12 * 3600}


def _naive_texts_near_the_ends() -> list[str]:
    first = dt.datetime(1677, 9, 21, 0, 12, 44)
    last = dt.datetime(2262, 4, 11, 23, 47, 16)
    steps = [dt.timedelta(hours=h, minutes=m) for h in range(0, 16) for m in (0, 7, 59)]
    return sorted({(first + s).isoformat(sep=" ") for s in steps} | {(last - s).isoformat(sep=" ") for s in steps})


@pytest.mark.parametrize("precision", list(Precision))
@pytest.mark.parametrize("zone", sorted(ZONES))
def test_a_zone_offset_past_the_ends_is_out_of_range_not_wrapped(zone, precision):
    texts = _naive_texts_near_the_ends()
    parsed = parse_times(pa.array(texts), fmt="iso8601", timezone=zone, precision=precision)
    got = parsed.values.to_pylist()
    epoch = dt.datetime(1970, 1, 1)
    unit = precision.ns_per_unit
    out = dict(parsed.problems).get(OUT_OF_RANGE)
    out_rows = out.to_pylist() if out is not None else [False] * len(texts)
    for text, value, rejected in zip(texts, got, out_rows):
        # Python's integers do not wrap: the reference for what the zone does to the time.
        ns = int((dt.datetime.fromisoformat(text) - epoch).total_seconds()) * 10**9 - ZONES[zone] * 10**9
        inside = lowest_ns(precision) <= ns <= LP_MAX_NS
        assert rejected == (not inside), text
        assert value == (ns // unit if inside else None), text


def test_a_real_zone_near_the_ends(tmp_path):
    run, rejects = _csv2lp(tmp_path, """\
        time,host,v
        2262-04-11 23:00:00,a,1
        2262-04-11 18:00:00,a,2
        1677-09-21 06:00:00,a,3
        """, "--timezone", "America/New_York")
    assert run.returncode == 3, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 2 and all(LP_MIN_NS <= int(line.split()[-1]) <= LP_MAX_NS for line in lines)
    assert int(lines[0].split()[-1]) > 0 and int(lines[1].split()[-1]) < 0  # nothing wrapped round
    assert [row[1] for row in rejects[1:]] == ["2"]
    assert rejects[1][2].startswith("out of range time in column 'time'")
    assert _books(tmp_path) == (3, 2, 1)


@pytest.mark.parametrize(("text", "expected", "problem"), [
    ("11/04/2262 23:47:16", LP_MAX_NS // 10**9 * 10**9, None),
    ("21/09/1677 00:12:44", -9_223_372_036 * 10**9, None),
    ("11/04/2262 23:47:17", None, OUT_OF_RANGE),  # Arrow's ns strptime gives null past int64: said "unparseable"
    ("12/04/2262 00:00:00", None, OUT_OF_RANGE),
    ("01/01/3000 00:00:00", None, OUT_OF_RANGE),
    ("21/09/1677 00:12:43", None, OUT_OF_RANGE),
    ("31/02/2000 00:00:00", None, "unparseable"),  # not a day: still unparseable at any unit
    ("junk", None, "unparseable"),
])
def test_a_strptime_time_past_the_ends_is_out_of_range_not_unparseable(text, expected, problem):
    parsed = parse_times(pa.array([text, "01/01/2000 00:00:00"]), fmt="%d/%m/%Y %H:%M:%S", timezone="UTC",
                         precision=Precision.NS)
    assert parsed.values.to_pylist() == [expected, 946_684_800 * 10**9]
    assert [kind for kind, mask in parsed.problems if mask[0].as_py()] == ([problem] if problem else [])
