"""converter.execd.flow: the emission gate keeps every watched buffer under its window, whatever the reports say.

The controller is tested here with scripted buffer numbers and a hand-driven clock, so
each case states exactly what Telegraf reported when; tests/test_telegraf_flow.py proves
the same with a real Telegraf and InfluxDB.
"""

from __future__ import annotations

import threading

import pytest

from converter.execd.flow import EmissionRecord, FixedPace, FlowControl, FlowSettings, Unthrottled
from converter.execd.pacing import TokenBucket
from converter.execd.telegraf_stats import OutputBuffer, StatsUnavailable

SETTINGS = FlowSettings(url="http://127.0.0.1:1/metrics", max_fill=0.5, outputs=(), batch_lines=1000,
                        reserve_lines=1000, poll_seconds=0.001, wait_seconds=0.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def _add(self, level: str, message: str) -> None:
        self.lines.append(f"{level}! {message}")

    def error(self, m: str) -> None: self._add("E", m)
    def warn(self, m: str) -> None: self._add("W", m)
    def info(self, m: str) -> None: self._add("I", m)
    def debug(self, m: str) -> None: self._add("D", m)


class Reports:
    """What Telegraf's endpoint says next: a dict of OutputBuffer, or an exception.

    With `stop_after` set, the Nth fetch from then on sets the stop event: a gate still
    waiting by then would wait for ever on numbers that never change."""

    def __init__(self, stop: threading.Event) -> None:
        self.next: object = StatsUnavailable("nothing yet")
        self.stop = stop
        self.stop_after: int | None = None

    def fetch(self):
        if self.stop_after is not None:
            self.stop_after -= 1
            if self.stop_after <= 0:
                self.stop.set()
        if isinstance(self.next, Exception):
            raise self.next
        return self.next


def buffer(size: int, at: float, *, limit: int = 10_000, dropped: int = 0, name: str = "influxdb_v2",
           plugin: str = "influxdb_v2") -> OutputBuffer:
    return OutputBuffer(name, plugin, size, limit, 0, dropped, at)


def gate(settings: FlowSettings = SETTINGS, *, replay_lines: int | None = None):
    clock, log, stop = Clock(), Log(), threading.Event()
    reports = Reports(stop)
    fallback = FixedPace(TokenBucket(0, stop))
    flow = FlowControl(settings, fallback, replay_lines=replay_lines, stop=stop, log=log, client=reports, clock=clock)
    return flow, clock, reports, log, stop


def try_acquire(flow: FlowControl, stop: threading.Event, lines: int) -> bool:
    """acquire() that gives up (returns False) after three fresh looks at the same numbers."""
    flow.client.stop_after = 3
    try:
        return flow.acquire(lines)
    finally:
        flow.client.stop_after = None
        stop.clear()


def test_emission_record_answers_with_the_last_count_at_or_before_a_time():
    clock = Clock()
    record = EmissionRecord(clock)
    for lines in (100, 200, 300):
        clock.now += 1
        record.add(lines)
    assert [record.by(1_000.0 + t) for t in (-1, 0, 0.5, 1, 2.9, 3, 99)] == [0, 0, 0, 100, 300, 600, 600]
    record.forget_before(1_002.5)
    assert record.by(1_002.6) == 300 and record.by(1_003) == 600
    assert record.by(1_000.5) == -1  # pruned away: unknown, never guessed


def test_room_is_the_window_less_the_buffer_less_what_was_sent_since_the_stamp():
    flow, clock, reports, log, stop = gate()
    reports.next = {"influxdb_v2": buffer(1_000, at=clock.now)}
    # window = 0.5 * 10,000 - reserve 1,000 = 4,000; buffer 1,000: 3,000 may go
    assert try_acquire(flow, stop, 3_000)
    clock.now += 1
    flow.sent(3_000)
    assert not try_acquire(flow, stop, 1)  # the old report does not know those 3,000 left
    reports.next = {"influxdb_v2": buffer(500, at=clock.now + 0.5)}  # a report after them: 500 left
    clock.now += 1
    assert try_acquire(flow, stop, 3_500) and not try_acquire(flow, stop, 3_501)


def test_lines_sent_just_before_a_stamp_still_count_against_it():
    """The agent's stamp may run half a millisecond ahead of its reading (telegraf_stats.py)."""
    flow, clock, reports, log, stop = gate()
    clock.now += 1
    flow.sent(2_000)
    reports.next = {"influxdb_v2": buffer(0, at=clock.now + 0.001)}  # stamped 1 ms after the write
    assert try_acquire(flow, stop, 2_000) and not try_acquire(flow, stop, 2_001)


def test_an_output_that_stops_writing_stops_the_emission_for_as_long_as_it_lasts():
    flow, clock, reports, log, stop = gate()
    total = 0
    for second in range(600):  # ten minutes of reports that never drain
        reports.next = {"influxdb_v2": buffer(0 if second == 0 else 4_000, at=clock.now)}
        clock.now += 1
        while try_acquire(flow, stop, 500):
            flow.sent(500)
            total += 500
    assert total == 4_000  # one window, then nothing, however long the outage


def test_every_watched_output_must_have_room_and_the_route_itself_is_not_watched():
    flow, clock, reports, log, stop = gate()
    reports.next = {
        "fast": buffer(0, clock.now, name="fast"),
        "slow": buffer(3_500, clock.now, name="slow"),
        "prometheus_client": buffer(99, clock.now, limit=100, name="prometheus_client", plugin="prometheus_client"),
    }
    assert try_acquire(flow, stop, 500) and not try_acquire(flow, stop, 501)


def test_named_outputs_only_and_a_missing_one_means_no_numbers():
    settings = FlowSettings(**{**SETTINGS.__dict__, "outputs": ("fast",), "wait_seconds": 0.0})
    flow, clock, reports, log, stop = gate(settings)
    reports.next = {"fast": buffer(0, clock.now, name="fast"), "slow": buffer(9_999, clock.now, name="slow")}
    assert try_acquire(flow, stop, 4_000)
    flow2, clock2, reports2, log2, stop2 = gate(FlowSettings(**{**SETTINGS.__dict__, "outputs": ("other",)}))
    reports2.next = {"fast": buffer(0, clock2.now, name="fast")}
    assert try_acquire(flow2, stop2, 10)  # the fixed pace (unpaced in this test)
    assert flow2.mode == "fallback"
    assert any("no numbers for output(s) other; it reports fast" in line for line in log2.lines)


def test_no_numbers_at_start_falls_back_to_the_fixed_pace_with_a_warning_then_switches_when_they_come():
    flow, clock, reports, log, stop = gate()
    assert try_acquire(flow, stop, 1_000)
    assert flow.mode == "fallback"
    assert [line[:62] for line in log.lines if line.startswith("W!")] == [
        "W! flow control: no buffer numbers from Telegraf (nothing yet)"]
    reports.next = {"influxdb_v2": buffer(3_900, clock.now)}
    flow._last_fetch = float("-inf")  # the next retry is due
    assert not try_acquire(flow, stop, 101)
    assert flow.mode == "flow"


def test_numbers_that_stop_coming_hold_the_emission_to_the_last_window():
    flow, clock, reports, log, stop = gate()
    reports.next = {"influxdb_v2": buffer(0, clock.now)}
    assert try_acquire(flow, stop, 4_000)
    flow.sent(4_000)
    reports.next = StatsUnavailable("connection refused")
    clock.now += 60
    assert not try_acquire(flow, stop, 1)
    assert flow.mode == "flow"
    assert any("numbers stopped coming (connection refused)" in line for line in log.lines)


def test_a_drop_reported_by_telegraf_is_an_error_line():
    flow, clock, reports, log, stop = gate()
    reports.next = {"influxdb_v2": buffer(0, clock.now, dropped=7)}
    try_acquire(flow, stop, 1)
    reports.next = {"influxdb_v2": buffer(0, clock.now + 1, dropped=19)}
    flow._refresh(force=True)
    assert [line for line in log.lines if line.startswith("E!")] == [
        "E! Telegraf's output influxdb_v2 dropped 12 metrics from its buffer (metrics_dropped); lines of csv2lp "
        "may be among them"]


@pytest.mark.parametrize("replay_lines, window", [(None, 5_000), (50_000, 5_000), (3_000, 3_000)])
def test_the_window_never_exceeds_what_a_resume_replays(replay_lines, window):
    flow, clock, reports, log, stop = gate(replay_lines=replay_lines)
    reports.next = {"influxdb_v2": buffer(0, clock.now)}
    assert try_acquire(flow, stop, window - 1_000)
    flow.sent(1)
    assert not try_acquire(flow, stop, window - 1_000)
    assert flow.window_lines() == window


def test_a_batch_larger_than_the_window_goes_alone_into_an_empty_buffer():
    flow, clock, reports, log, stop = gate()
    reports.next = {"influxdb_v2": buffer(0, clock.now)}
    assert try_acquire(flow, stop, 50_000)
    flow.sent(50_000)
    assert not try_acquire(flow, stop, 50_000)


def test_unthrottled_and_fixed_pace_end_on_stop():
    stop = threading.Event()
    assert Unthrottled(stop).acquire(10**9)
    stop.set()
    assert not Unthrottled(stop).acquire(1) and not FixedPace(TokenBucket(10, stop)).acquire(1)
