"""converter.execd.pacing: the pace that keeps Telegraf's buffer from overflowing, and the token bucket."""

from __future__ import annotations

import threading
import time

import pytest

from converter.errors import ConverterError
from converter.execd.pacing import Pace, TokenBucket, derive_pace, outage_ridden_out

SHIPPED = {"metric_batch_size": 5000, "metric_buffer_limit": 100_000, "flush_interval_seconds": 5.0}


@pytest.mark.parametrize("agent, outage, expected", [
    # P = (B - 2b) / (T + F); batch = min(b, P / 2)
    (SHIPPED, 40, Pace(2000.0, 1000, 40.0)),
    ({**SHIPPED, "metric_buffer_limit": 200_000}, 40, Pace(190_000 / 45, 2111, 40.0)),
    ({"metric_batch_size": 1000, "metric_buffer_limit": 10_000, "flush_interval_seconds": 10.0}, 30, Pace(200.0, 100, 30.0)),
    ({"metric_batch_size": 100, "metric_buffer_limit": 100_000, "flush_interval_seconds": 1.0}, 0, Pace(99_800.0, 100, 0.0)),
])  # fmt: skip
def test_pace_derived_from_the_agent_settings(agent, outage, expected):
    pace = derive_pace(**agent, outage_seconds=outage)
    assert pace.lines_per_second == pytest.approx(expected.lines_per_second)
    assert pace.batch_lines == expected.batch_lines
    assert pace.outage_seconds == pytest.approx(expected.outage_seconds)


def test_explicit_values_win_and_the_outage_follows_from_them():
    pace = derive_pace(**SHIPPED, outage_seconds=40, lines_per_second=4000, batch_lines=500)
    assert (pace.lines_per_second, pace.batch_lines) == (4000, 500)
    assert pace.outage_seconds == pytest.approx(17.5)  # (100000 - 10000) / 4000 - 5
    assert "4,000 lines/s in batches of 500; rides out an output outage of 18 s" in pace.describe()


def test_zero_lines_per_second_is_unpaced_in_telegraf_batches():
    pace = derive_pace(**SHIPPED, outage_seconds=40, lines_per_second=0)
    assert (pace.lines_per_second, pace.batch_lines, pace.outage_seconds) == (0.0, 5000, None)
    assert pace.describe().startswith("unpaced")


def test_outage_formula_is_the_inverse_of_the_pace():
    for outage in (0, 7.5, 40, 300):
        pace = derive_pace(**SHIPPED, outage_seconds=outage)
        assert outage_ridden_out(**SHIPPED, lines_per_second=pace.lines_per_second) == pytest.approx(outage)


@pytest.mark.parametrize("changes, message", [
    ({"metric_buffer_limit": 10_000}, r"metric_buffer_limit \(10,000\) must be more than twice metric_batch_size \(5,000\)"),
    ({"metric_batch_size": 0}, "metric_batch_size must be >= 1"),
    ({"flush_interval_seconds": 0}, "flush_interval_seconds > 0"),
    ({"outage_seconds": -1}, "outage_seconds >= 0"),
    ({"lines_per_second": -5}, "lines_per_second must be >= 0"),
    ({"batch_lines": 0}, "batch_lines must be >= 1"),
])  # fmt: skip
def test_impossible_settings_are_refused_with_the_reason(changes, message):
    with pytest.raises(ConverterError, match=message):
        derive_pace(**{**SHIPPED, "outage_seconds": 40, **changes})


class FakeTime:
    """A clock and a stop event whose wait() advances the clock instead of sleeping."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []
        self.stopped = False

    def clock(self) -> float:
        return self.now

    def is_set(self) -> bool:
        return self.stopped

    def wait(self, seconds: float) -> bool:
        self.waits.append(round(seconds, 6))
        self.now += seconds
        return self.stopped


def test_bucket_lets_a_batch_go_every_n_over_p_seconds():
    fake = FakeTime()
    bucket = TokenBucket(1000, fake, clock=fake.clock)  # type: ignore[arg-type]
    assert all(bucket.acquire(500) for _ in range(5))
    assert fake.waits == [0.5, 0.5, 0.5, 0.5]  # the first batch goes at once
    assert fake.now == pytest.approx(102.0)


def test_bucket_hoards_no_credit_while_idle():
    fake = FakeTime()
    bucket = TokenBucket(1000, fake, clock=fake.clock)  # type: ignore[arg-type]
    bucket.acquire(1000)
    fake.now += 60  # an empty spool for a minute
    assert bucket.acquire(1000) and bucket.acquire(1000)
    assert fake.waits == [1.0]  # after the idle minute: one batch at once, then the pace again


def test_bucket_refuses_once_stop_is_set():
    fake = FakeTime()
    bucket = TokenBucket(10, fake, clock=fake.clock)  # type: ignore[arg-type]
    assert bucket.acquire(10)
    fake.stopped = True
    assert not bucket.acquire(10)
    assert fake.waits == []  # refused before waiting


def test_unpaced_bucket_never_waits():
    fake = FakeTime()
    bucket = TokenBucket(0, fake, clock=fake.clock)  # type: ignore[arg-type]
    assert all(bucket.acquire(10**6) for _ in range(100))
    assert fake.waits == []


def test_real_bucket_keeps_the_rate_and_a_stop_ends_its_wait_at_once():
    stop = threading.Event()
    bucket = TokenBucket(2000, stop)
    began = time.monotonic()
    for _ in range(5):
        assert bucket.acquire(200)
    assert 0.38 <= time.monotonic() - began < 0.8  # 4 waits of 0.1 s
    slow = TokenBucket(1, stop)
    slow.acquire(100)  # the next batch may go in 100 s
    threading.Timer(0.2, stop.set).start()
    began = time.monotonic()
    assert not slow.acquire(1)
    assert time.monotonic() - began < 1.0
