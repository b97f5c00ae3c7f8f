"""converter.execd.flow: the gate keeps every watched buffer under its window, whatever the reports say.

The controller is tested here with scripted pages and a hand-driven clock, fetched in the
caller's thread (threaded=False), so each case states exactly what Telegraf reported
when; tests/test_telegraf_flow.py and tests/test_telegraf_delivery.py prove the same with
a real Telegraf and InfluxDB.
"""

from __future__ import annotations

import threading

import pytest

from converter.execd.coordination import Coordination
from converter.execd.flow import FlowControl
from converter.execd.gates import FixedPace, FlowSettings, Unthrottled
from converter.execd.pacing import TokenBucket
from converter.execd.telegraf_stats import FlowRefused, OutputBuffer, Page, StatsUnavailable

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
    """What Telegraf's endpoint says next: a Page, or an exception.

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

    def close(self) -> None:
        pass


def buffer(size: int, at: float, *, limit: int = 10_000, added: int = 0, written: int = 0, dropped: int = 0,
           name: str = "influxdb_v2", plugin: str = "influxdb_v2") -> OutputBuffer:
    return OutputBuffer(name, plugin, size, limit, written, dropped, at, metrics_added=added)


def page(*buffers: OutputBuffer, at: float, marks: dict[str, int] | None = None) -> Page:
    return Page({b.output: b for b in buffers}, at, marks=marks or {}, per_instance=True)


def gate(settings: FlowSettings = SETTINGS, *, replay_lines: int | None = None, writer: str = "w1",
         coordination: Coordination | None = None, clock: Clock | None = None):
    clock, log, stop = clock or Clock(), Log(), threading.Event()
    reports = Reports(stop)
    fallback = FixedPace(TokenBucket(0, stop))
    flow = FlowControl(settings, fallback, replay_lines=replay_lines, stop=stop, log=log, writer=writer,
                       coordination=coordination, client=reports, clock=clock, threaded=False)
    return flow, clock, reports, log, stop


def try_acquire(flow: FlowControl, stop: threading.Event, lines: int) -> bool:
    """acquire() that gives up (returns False) after three fresh looks at the same numbers."""
    flow.client.stop_after = 3
    try:
        return flow.acquire(lines)
    finally:
        flow.client.stop_after = None
        stop.clear()


def look_again(flow: FlowControl, size: int, *, marks: dict[str, int] | None = None, **counts: int) -> None:
    """A second later, Telegraf's next page (with our marks, when given) and the gate looking at it."""
    clock = flow.clock
    clock.now += 1
    flow.client.next = page(buffer(size, clock.now, **counts), at=clock.now, marks=marks)
    try_acquire(flow, flow.client.stop, 1)



def test_room_is_the_window_less_the_buffer_less_what_is_not_yet_known_to_be_in_it():
    flow, clock, reports, log, stop = gate()
    reports.next = page(buffer(1_000, at=clock.now), at=clock.now)
    # window = 0.5 * 10,000 = 5,000; buffer 1,000: 4,000 may go
    assert try_acquire(flow, stop, 4_000)
    clock.now += 1
    mark, confirming = flow.sent(4_000, "batch 1")
    assert mark == b"csv2lp_delivery,csv2lp=flow,writer=w1 lines=4000i\n" and confirming
    assert not try_acquire(flow, stop, 1)  # the page does not show those 4,000 in the buffer yet
    # the mark is on the page (all 4,000 added), and a report after it says 4,500 are buffered
    reports.next = page(buffer(4_500, at=clock.now + 0.5, added=5_000), at=clock.now + 1, marks={"w1": 4_000})
    clock.now += 1
    # that report is older than the fetch that showed the mark: it may not count them yet
    assert not try_acquire(flow, stop, 1)
    clock.now += 1
    reports.next = page(buffer(4_500, at=clock.now, added=5_000), at=clock.now, marks={"w1": 4_000})
    assert try_acquire(flow, stop, 499) and not try_acquire(flow, stop, 2)


def test_an_output_that_stops_writing_stops_the_emission_for_as_long_as_it_lasts():
    flow, clock, reports, log, stop = gate()
    total = 0
    for second in range(600):  # ten minutes of reports that never drain
        reports.next = page(buffer(total, at=clock.now, added=total), at=clock.now, marks={"w1": total})
        clock.now += 1
        while try_acquire(flow, stop, 500):
            flow.sent(500, second)
            total += 500
    assert total == 5_000  # one window, then nothing, however long the outage


def test_every_watched_output_must_have_room_and_the_route_itself_is_not_watched():
    flow, clock, reports, log, stop = gate()
    reports.next = page(buffer(0, clock.now, name="fast"), buffer(4_500, clock.now, name="slow"),
                        buffer(99, clock.now, limit=100, name="prometheus_client", plugin="prometheus_client"),
                        at=clock.now)
    assert try_acquire(flow, stop, 500) and not try_acquire(flow, stop, 501)


def test_no_numbers_at_start_falls_back_to_the_fixed_pace_with_a_warning():
    flow, clock, reports, log, stop = gate()
    assert try_acquire(flow, stop, 1_000)
    assert flow.mode == "fallback"
    assert [line[:62] for line in log.lines if line.startswith("W!")] == [
        "W! flow control: no buffer numbers from Telegraf (nothing yet)"]
    assert flow.sent(1_000, "b") == (b"csv2lp_delivery,csv2lp=flow,writer=w1 lines=1000i\n", False)
    assert flow.delivered() == [("b", False)]  # the fixed pace: delivered once written


@pytest.mark.parametrize("bad", [
    StatsUnavailable("connection refused"),
    Page({}, 0.0, problems={"influxdb_v2": "buffer_size = NaN is not a count"}),
])
def test_numbers_that_stop_coming_or_turn_bad_hold_the_emission_to_the_last_window(bad):
    flow, clock, reports, log, stop = gate()
    reports.next = page(buffer(0, clock.now), at=clock.now)
    assert try_acquire(flow, stop, 5_000)
    flow.sent(5_000, "b")
    reports.next = bad
    clock.now += 60
    assert not try_acquire(flow, stop, 1)
    assert flow.mode == "flow"
    reason = "connection refused" if isinstance(bad, Exception) else "buffer_size = NaN is not a count"
    assert any("numbers stopped coming" in line and reason in line for line in log.lines), log.lines


def test_two_outputs_called_alike_are_refused_with_the_fix():
    flow, clock, reports, log, stop = gate()
    reports.next = Page({}, clock.now, problems={"file": "2 outputs are called file"}, duplicates=("file",))
    with pytest.raises(FlowRefused, match="give each an alias"):
        try_acquire(flow, stop, 1)


def test_a_batch_is_delivered_once_telegraf_wrote_every_metric_added_before_its_mark():
    """The worked example of delivery.py: another writer adds 2,000 metrics beside ours."""
    flow, clock, reports, log, stop = gate()
    reports.next = page(buffer(2_000, clock.now, added=12_000, written=10_000), at=clock.now)
    assert try_acquire(flow, stop, 2_000)
    clock.now += 1
    flow.sent(2_000, "ours")
    reports.next = page(buffer(6_000, clock.now, added=16_000, written=10_000), at=clock.now, marks={"w1": 2_000})
    try_acquire(flow, stop, 1)
    look_again(flow, 5_000, added=16_000, written=11_000, marks={"w1": 2_000})
    assert flow.delivered() == [] and flow.pending()  # the threshold is 16,000 written
    look_again(flow, 1, added=16_000, written=15_999, marks={"w1": 2_000})
    assert flow.delivered() == []  # one metric short, whoever's it is
    look_again(flow, 0, added=16_000, written=16_000, marks={"w1": 2_000})
    assert flow.delivered() == [("ours", True)] and not flow.pending()


def test_a_drop_while_our_lines_are_in_the_buffer_gives_them_up_for_sending_again():
    flow, clock, reports, log, stop = gate()
    reports.next = page(buffer(0, clock.now, dropped=7), at=clock.now)
    assert try_acquire(flow, stop, 1_000)
    clock.now += 1
    flow.sent(1_000, "b")
    reports.next = page(buffer(0, clock.now, added=1_000, written=988, dropped=19), at=clock.now, marks={"w1": 1_000})
    try_acquire(flow, stop, 1)
    assert flow.delivered() == [] and "dropped 12 metrics" in (flow.lost() or "")
    assert any(line.startswith("E! Telegraf's output influxdb_v2 dropped 12 metrics") for line in log.lines)
    flow.forget_pending()
    assert flow.lost() is None and not flow.pending()


def test_counters_that_go_back_mean_telegraf_restarted_and_nothing_more_is_confirmed():
    flow, clock, reports, log, stop = gate()
    reports.next = page(buffer(0, clock.now, added=500, written=500), at=clock.now)
    assert try_acquire(flow, stop, 100)
    clock.now += 1
    flow.sent(100, "b")
    reports.next = page(buffer(0, clock.now, added=0, written=0), at=clock.now, marks={"w1": 100})
    try_acquire(flow, stop, 1)
    look_again(flow, 0, added=100, written=100, marks={"w1": 100})
    assert flow.delivered() == [] and flow.pending()
    assert any("went back" in line and "Telegraf restarted" in line for line in log.lines)


def test_two_writers_sharing_a_folder_keep_the_buffer_under_one_window_between_them(tmp_path):
    clock = Clock()
    a = gate(writer="a", coordination=Coordination(tmp_path, "a", clock=clock), clock=clock)
    b = gate(writer="b", coordination=Coordination(tmp_path, "b", clock=clock), clock=clock)
    for flow, _, reports, _, _ in (a, b):
        flow.coordination.open()
        reports.next = page(buffer(1_000, at=clock.now), at=clock.now)
    assert try_acquire(a[0], a[4], 3_000)
    assert not try_acquire(b[0], b[4], 1_001)  # a's claim counts in b's bound
    assert try_acquire(b[0], b[4], 1_000)
    assert not try_acquire(a[0], a[4], 1)
    for flow, *_ in (a, b):
        flow.close()


def test_a_window_without_marks_never_exceeds_what_a_resume_replays():
    flow, clock, reports, log, stop = gate(replay_lines=3_000)
    flow.marks = "missing"  # an old telegraf.conf: the page never shows csv2lp's marks
    reports.next = page(buffer(0, clock.now), at=clock.now)
    assert try_acquire(flow, stop, 3_000) and flow.window_lines() == 4_000  # replay + reserve


def test_unthrottled_and_fixed_pace_end_on_stop():
    stop = threading.Event()
    assert Unthrottled(stop).acquire(10**9)
    stop.set()
    assert not Unthrottled(stop).acquire(1) and not FixedPace(TokenBucket(10, stop)).acquire(1)
