"""Flow control end to end: the shipped telegraf.conf and csv2lp.toml, a real Telegraf, a real InfluxDB 2.

csv2lp execd emits as fast as Telegraf's output drains, reading the output's buffer numbers
from Telegraf itself ([[inputs.internal]] -> [[outputs.prometheus_client]]). Each test
drops generated Movebank files into the spool and then counts, in InfluxDB, the points of
every series against the CSV (read with Python's csv module), and proves from Telegraf's
own numbers and log that its buffer never dropped a metric:

- at full speed, the buffer stays under max_buffer_fill of its limit;
- InfluxDB down for far longer than the buffer could hold at the import's rate: csv2lp
  stops emitting, nothing is dropped, everything lands once InfluxDB is back;
- Telegraf stopped and started, and Telegraf killed with SIGKILL (its buffer is lost:
  the replay on resume covers it, because the window is capped by replay_lines);
- csv2lp killed with SIGKILL five times at random moments.

InfluxDB 2 counts exactly right after acknowledged writes, so the counts here are final;
each wait is bounded and its failure message says what was seen.
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from pathlib import Path

import pytest

from support.movebank_gen import generate
from support.stack import ShippedStack, count_per_series, environ_seconds, expected_per_series, wait_for_count
from support.telegraf import wait_until

pytestmark = [pytest.mark.telegraf, pytest.mark.influxdb2]

# The shipped telegraf.conf's metric_buffer_limit and csv2lp.toml's max_buffer_fill.
BUFFER_LIMIT = 100_000
WINDOW = BUFFER_LIMIT // 2
# An outage of this long in CI; CSV2LP_OUTAGE_SECONDS=300 runs the five minutes.
OUTAGE_S = environ_seconds("CSV2LP_OUTAGE_SECONDS", 40.0)
WROTE_TO_INFLUXDB = r"D! \[outputs\.influxdb_v2\] Wrote batch of (\d+) metrics in"
INFLUX_FULLNESS = r"D! \[outputs\.influxdb_v2\] Buffer fullness: (\d+) / (\d+) metrics"


@pytest.fixture(scope="module")
def rows_300k(tmp_path_factory) -> Path:
    return generate(300_000, tmp_path_factory.mktemp("gen") / "g300k.csv", individuals=12, seed=3)


@pytest.fixture
def stack(shipped_stacks):
    """The shared maker of shipped stacks (support/stack.py), by this module's name for it."""
    return shipped_stacks


def written_to_influxdb(stack: ShippedStack) -> int:
    return sum(int(n) for n in re.findall(WROTE_TO_INFLUXDB, stack.telegraf.log_text()))


def assert_lands_exactly(stack: ShippedStack, csv_path: Path, *, timeout: float) -> float:
    expected = expected_per_series(csv_path)
    seconds = wait_for_count(stack.server, stack.server.bucket, sum(expected.values()), timeout)
    assert count_per_series(stack.server, stack.server.bucket) == expected
    return seconds


def assert_nothing_dropped(stack: ShippedStack) -> None:
    assert stack.overflow_lines() == []
    if stack.telegraf.running:
        numbers = stack.internal_write()["influxdb_v2"]
        assert numbers["metrics_dropped"] == 0, numbers


def test_a_dropped_file_lands_exactly_with_the_buffer_under_half_its_limit(stack, rows_300k):
    s = stack()
    s.drop(rows_300k, "g.csv")
    assert_lands_exactly(s, rows_300k, timeout=240)
    log = s.telegraf.log_text()
    fullness = [(int(n), int(limit)) for n, limit in re.findall(INFLUX_FULLNESS, log)]
    assert fullness and {limit for _, limit in fullness} == {BUFFER_LIMIT}
    assert max(n for n, _ in fullness) <= WINDOW, max(fullness)
    assert_nothing_dropped(s)
    # Telegraf's own numbers stayed out of the bucket (the tagdrop of the shipped output)
    measurements = s.server.influxql("SHOW MEASUREMENTS", s.server.bucket)[0]["series"][0]["values"]
    assert measurements == [["movebank"]]
    assert written_to_influxdb(s) == 300_000  # every line once
    assert re.search(r"I! \[inputs\.execd\] flow control: Telegraf's buffer numbers from http://127\.0\.0\.1:\d+/metrics; "
                     r"watching influxdb_v2 \(\d+ of 100,000\); each kept under 50% of its limit", log), log[-3000:]


def test_influxdb_down_far_longer_than_the_buffer_could_hold_drops_nothing(stack, rows_300k):
    s = stack()
    s.drop(rows_300k, "g.csv")
    wait_until(lambda: sum(count_per_series(s.server, s.server.bucket).values()) >= 30_000, 120, "30,000 points")
    s.server.stop()
    began, peak = time.monotonic(), 0
    while time.monotonic() - began < OUTAGE_S:  # the buffer, as Telegraf reports it, all along
        peak = max(peak, int(s.internal_write()["influxdb_v2"]["buffer_size"]))
        time.sleep(0.5)
    stuck = s.internal_write()["influxdb_v2"]
    s.server.start()
    assert_lands_exactly(s, rows_300k, timeout=300)
    # The import's rate fills the whole buffer within seconds; the outage lasted OUTAGE_S, and
    # csv2lp held back at its window meanwhile.
    assert WINDOW // 2 <= peak <= WINDOW, peak
    assert stuck["metrics_dropped"] == 0 and stuck["buffer_size"] <= WINDOW, stuck
    assert_nothing_dropped(s)
    assert re.search(r"W! \[inputs\.execd\] flow control: holding lines back for \d+ s: the output buffer is not "
                     r"draining", s.telegraf.log_text())


def test_telegraf_stopped_and_started_mid_import_loses_nothing(stack, rows_300k):
    s = stack()
    s.drop(rows_300k, "g.csv")
    wait_until(lambda: sum(count_per_series(s.server, s.server.bucket).values()) >= 60_000, 120, "60,000 points")
    s.telegraf.stop()
    wait_until(lambda: not s.execd_pids(), 15, "csv2lp to exit with Telegraf")
    s.telegraf.start()
    assert_lands_exactly(s, rows_300k, timeout=240)
    assert_nothing_dropped(s)
    assert 300_000 <= written_to_influxdb(s) <= 300_000 + WINDOW + 10_000


def test_telegraf_killed_mid_import_its_lost_buffer_is_replayed(stack, rows_300k):
    s = stack()
    s.drop(rows_300k, "g.csv")
    wait_until(lambda: sum(count_per_series(s.server, s.server.bucket).values()) >= 60_000, 120, "60,000 points")
    s.telegraf.kill()  # its buffer is gone; csv2lp sees its pipes close and checkpoints
    wait_until(lambda: not s.execd_pids(), 15, "csv2lp to exit after Telegraf's death")
    s.telegraf.start()
    assert_lands_exactly(s, rows_300k, timeout=240)
    assert_nothing_dropped(s)
    assert re.search(r"g\.csv: resuming after line [\d,]+ \(run 2\)", s.telegraf.log_text())


def test_csv2lp_killed_five_times_at_random_moments_loses_nothing(stack, rows_300k):
    s = stack(restart_delay="1s")
    rng = random.Random(20261201)
    s.drop(rows_300k, "g.csv")
    for kill in range(5):
        wait_until(lambda: s.execd_pids(), 60, "csv2lp to run")
        time.sleep(rng.uniform(0.3, 2.0))
        assert not (s.spool / "done" / "g.csv").exists(), f"the file was through before kill {kill + 1}"
        killed = s.execd_pids()
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: s.execd_pids() and not set(killed) & set(s.execd_pids()), 30, "a new csv2lp")
    assert_lands_exactly(s, rows_300k, timeout=300)
    assert_nothing_dropped(s)
    runs = len(re.findall(r"g\.csv: (sending|resuming)", s.telegraf.log_text()))
    assert runs >= 3, s.telegraf.log_tail()
    # each resume re-sends at most the replay window (the window plus the reserve) and a batch
    assert written_to_influxdb(s) <= 300_000 + (runs - 1) * (WINDOW + 2 * 5_000)


@pytest.mark.slow
def test_a_million_rows_land_exactly_at_the_shipped_settings(stack, tmp_path):
    rows = generate(1_000_000, tmp_path / "g1m.csv", seed=11)
    s = stack()
    s.drop(rows, "g1m.csv")
    assert_lands_exactly(s, rows, timeout=900)
    assert_nothing_dropped(s)
    assert written_to_influxdb(s) == 1_000_000
