"""A file counts as sent once Telegraf has written it, not once it is in the pipe.

The shipped telegraf.conf and csv2lp.toml, a real Telegraf, a real InfluxDB 2 (support/
stack.py). InfluxDB is stopped, files are dropped and csv2lp emits all of their lines into
Telegraf's memory buffer; then Telegraf is killed with SIGKILL, which loses that buffer.
Before csv2lp waited for Telegraf's own numbers it had moved those files to done/ by then
and nothing ever sent them again (issue 23: 0 of 20,000 rows landed). Now they stay in
the spool and in the state until Telegraf's numbers show them written, and the next start
sends every one of them again.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from support.movebank_gen import generate
from support.stack import ShippedStack, count_per_series, expected_points_per_series, wait_for_count
from support.telegraf import peak_buffer_fullness, wait_until

pytestmark = [pytest.mark.telegraf, pytest.mark.influxdb2]

ROWS = 20_000


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("gen")
    return [generate(ROWS, folder / f"g{n}.csv", individuals=4, seed=30 + n) for n in range(2)]


@pytest.fixture
def stack(shipped_stacks):
    """The shared maker of shipped stacks (support/stack.py), by this module's name for it."""
    return shipped_stacks


def state(s: ShippedStack) -> dict:
    return json.loads(s.state_file.read_text())


def all_out(s: ShippedStack, names: list[str]) -> bool:
    """Every line of every named file emitted (the state says so): they are all in Telegraf's buffer."""
    try:
        waiting = {p["identity"]["name"] for p in state(s)["unconfirmed"] if p["emitted_all"]}
    except (OSError, ValueError, KeyError):
        return False
    return set(names) <= waiting


@pytest.mark.parametrize("count", [1, 2], ids=["one file", "two files"])
def test_telegraf_killed_while_influxdb_is_down_loses_no_file_that_csv2lp_had_emitted(stack, files, count):
    names = [f"g{n}.csv" for n in range(count)]
    s = stack()
    s.server.stop()
    for n, name in enumerate(names):
        s.drop(files[n], name)
    wait_until(lambda: all_out(s, names), 120, f"csv2lp to emit every line of {names} (state: "
                                              f"{s.state_file.read_text() if s.state_file.exists() else 'none'})")
    seen: dict = {}

    def buffered() -> bool:  # Telegraf's own report catches up within a few of its 250 ms intervals
        seen.update(s.internal_write()["influxdb_v2"])
        return seen["buffer_size"] >= count * ROWS

    wait_until(buffered, 30, f"{count * ROWS:,} metrics in Telegraf's buffer ({seen})")
    assert seen["metrics_written"] == 0, seen
    # still in the spool, not in done/: nothing confirmed them written
    assert sorted(p.name for p in s.spool.glob("g*.csv")) == names
    assert not list((s.spool / "done").glob("*"))
    for name in names:
        assert re.search(rf"{re.escape(name)}: all {ROWS:,} lines are with Telegraf; the file moves to done/ once "
                         rf"Telegraf has written them to every output", s.telegraf.log_text())

    s.telegraf.kill()  # its buffer, every line of those files, is gone
    wait_until(lambda: not s.execd_pids(), 30, "csv2lp to exit after Telegraf's death")
    s.server.start()
    s.telegraf.start()

    expected = expected_points_per_series(files[:count])
    wait_for_count(s.server, s.server.bucket, sum(expected.values()), timeout=240)
    assert count_per_series(s.server, s.server.bucket) == expected
    wait_until(lambda: sorted(p.name for p in (s.spool / "done").glob("g*.csv")) == names, 120,
               f"{names} in done/ once Telegraf confirmed them")
    after = state(s)
    assert after["unconfirmed"] == [] and after["current"] is None
    assert {r["name"] for r in after["finished"].values() if r["status"] == "done"} == set(names)
    for name in names:
        assert re.search(rf"{re.escape(name)}: was sent, but not confirmed written by Telegraf after line 0; "
                         rf"sending those lines again first", s.telegraf.log_text())
    assert s.overflow_lines() == []


WRITERS = 3
WRITER_ROWS = 60_000


@pytest.fixture(scope="module")
def writer_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("writers")
    return [generate(WRITER_ROWS, folder / f"w{n}.csv", individuals=6, seed=50 + n) for n in range(WRITERS)]


def test_three_writers_under_one_telegraf_keep_its_buffer_under_the_window_between_them(stack, writer_files):
    """Three [[inputs.execd]] of one Telegraf, one spool each, InfluxDB down: 180,000 lines want into a
    buffer whose window (max_buffer_fill 0.5 of 100,000) is 50,000. Each csv2lp alone would fill the
    window (issue 23: the buffer peaked at 54,697-79,528); sharing it through the coordination folder,
    all of them together stay under it, and once InfluxDB is back every point lands."""
    s = stack(writers=WRITERS)
    window = 50_000
    s.server.stop()
    for n, source in enumerate(writer_files):
        s.drop(source, source.name, writer=n)

    def emitted(n: int) -> int:
        try:
            data = json.loads(s.state_files[n].read_text())
        except (OSError, ValueError):
            return 0
        return sum(p["emitted_through_line"] for p in [*data["unconfirmed"], *([data["current"]] if data["current"]
                                                                              else [])])

    peak = 0
    history: list[int] = []

    def stalled() -> bool:  # the buffer cannot drain while InfluxDB is down: its last size is its peak
        nonlocal peak
        peak = max(peak, int(s.internal_write()["influxdb_v2"]["buffer_size"]))
        history.append(sum(emitted(n) for n in range(WRITERS)))
        return len(history) > 20 and history[-1] == history[-21] and peak >= window * 0.8

    wait_until(stalled, 120, f"the three writers to stop at the window (buffer {peak:,}, emitted {history[-1:]})",
               poll=0.25)
    for _ in range(12):  # 3 s more: nobody sends past the window while they wait
        peak = max(peak, int(s.internal_write()["influxdb_v2"]["buffer_size"]))
        time.sleep(0.25)
    assert peak <= window, f"Telegraf's buffer reached {peak:,} with three writers sharing a {window:,} window"
    assert all(emitted(n) > 0 for n in range(WRITERS)), [emitted(n) for n in range(WRITERS)]
    assert s.overflow_lines() == []

    s.server.start()
    expected = expected_points_per_series(writer_files)
    wait_for_count(s.server, s.server.bucket, sum(expected.values()), timeout=300)
    assert count_per_series(s.server, s.server.bucket) == expected
    wait_until(lambda: all((s.spools[n] / "done" / f.name).exists() for n, f in enumerate(writer_files)), 120,
               "every file in its done/ once Telegraf confirmed it")
    assert s.internal_write()["influxdb_v2"]["metrics_dropped"] == 0
    assert s.overflow_lines() == []
    assert peak_buffer_fullness(s.telegraf.log_text()) <= window
