"""Until the count is complete: count() every 0.25 s from the writer's last acknowledgement, a short count re-checked.

A path is done when the database counts every row. count() is not free: over a million
points InfluxDB 2 took ~0.25 s per count on a loaded 2-core machine (82 counts, 20.5 s of
queries, in a 41 s import), work the server would otherwise spend storing points. So by
default the count is polled only once the writer says every row was acknowledged (every
POST answered 204; Telegraf's `metrics_written` for the output, stamped by the agent;
csv2lp's exit status 0), and from then every POLL_S until it is complete. The time is
that of the first count that found every row: nothing lands after its acknowledgement, so
waiting for it first costs at most one poll of Telegraf's numbers (ACK_POLL_S) plus the
delay of its 250 ms reports. `count_from_start` polls from the path's start instead (the
same clock, more load on the server), to compare.

InfluxDB 1.6.7 can answer count() short for tens of seconds after every write was
acknowledged (issue 15; cf. influxdata/influxdb#8169), so a count that stops short is not
a loss yet: when it has not moved for STALL_S after the acknowledgement, influxd is
restarted and counted again. The result says which it was: complete, complete only after
the restart (the time is then the acknowledgement's), or lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .servers import Target

POLL_S = 0.25  # count() while the count is due
ACK_POLL_S = 0.1  # the writer's own numbers while it writes
STALL_S = 20.0  # no progress for this long after the acknowledgement: re-check
NO_PROGRESS_S = 180.0  # neither the writer nor the count moved for this long: give up


@dataclass
class Progress:
    """What the writer of a path says about itself, asked at every poll."""

    acked_at: float | None = None  # monotonic time every row was acknowledged, once it was
    failed: str | None = None  # the writer stopped without writing everything
    moved_at: float | None = None  # the last time the writer's own count changed
    _done: int = -1

    def ack(self, at: float | None = None) -> None:
        if self.acked_at is None:
            self.acked_at = time.monotonic() if at is None else at

    def advanced(self, done: int) -> None:
        """The writer's own count of what it has written (requests answered, metrics_written)."""
        if done != self._done:
            self._done, self.moved_at = done, time.monotonic()


@dataclass(frozen=True)
class Watching:
    """How long a path may take, and whether to count from its start (see the module docstring)."""

    timeout: float
    count_from_start: bool = False

    def options(self) -> dict:
        return {"timeout": self.timeout, "count_from_start": self.count_from_start}


@dataclass
class Counted:
    seconds: float | None  # from the path's start until the count was complete (None: never)
    count: int
    check: str  # "complete", "complete after an influxd restart ...", "lost N ...", "failed: ..."
    acked_seconds: float | None
    restarted: bool = False
    queries: int = 0  # count() queries made while waiting, and their time: the watching's own cost
    query_seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.seconds is not None


def until_counted(target: Target, field: str, expected: int, started: float, progress: Progress, *,
                  timeout: float, on_poll: Callable[[], None] = lambda: None,
                  before_restart: Callable[[], None] = lambda: None, stall_s: float = STALL_S,
                  count_from_start: bool = False) -> Counted:
    """Poll until `field` is counted `expected` times; `on_poll` runs at every poll (Telegraf's numbers)."""
    count, changed_at = -1, started
    queries, query_seconds = 0, 0.0

    def result(seconds: float | None, check: str, **extra: object) -> Counted:
        return Counted(seconds, max(count, 0), check, _since(progress.acked_at, started), queries=queries,
                       query_seconds=round(query_seconds, 2), **extra)

    while True:
        on_poll()
        now = time.monotonic()
        if progress.failed:
            return result(None, f"failed: {progress.failed}")
        last_move = max(changed_at, progress.moved_at or started)
        watched = progress.moved_at is not None or count >= 0  # something that can show progress
        if progress.acked_at is None and watched and now - last_move > NO_PROGRESS_S:
            return result(None, f"failed: no progress for {NO_PROGRESS_S:.0f} s at {max(count, 0):,} of "
                                f"{expected:,} counted, and the writer had not finished")
        if now - started > timeout:
            return result(None, f"failed: {max(count, 0):,} of {expected:,} counted after the {timeout:.0f} s timeout")
        if progress.acked_at is None and not count_from_start:
            time.sleep(ACK_POLL_S)
            continue
        try:
            current = target.count(field)
        except Exception as exc:  # noqa: BLE001 - a refused query is a result, with its text
            return result(None, f"failed: count query: {exc}")
        queries, query_seconds = queries + 1, query_seconds + time.monotonic() - now
        if current != count:
            count, changed_at = current, now
        if count >= expected:
            return result(now - started, "complete")
        if progress.acked_at is not None and now - max(changed_at, progress.acked_at) > stall_s:
            short, stalled = expected - count, now - max(changed_at, progress.acked_at)
            before_restart()
            target.restart()
            count = target.count(field)
            if count >= expected:
                return result(progress.acked_at - started,
                              f"count {short:,} short for {stalled:.0f} s after every write was acknowledged; "
                              f"complete after an influxd restart (time: the acknowledgement's)", restarted=True)
            return result(None, f"lost {expected - count:,}: the count stayed short after an influxd restart",
                          restarted=True)
        time.sleep(POLL_S)


def _since(at: float | None, started: float) -> float | None:
    return None if at is None else at - started
