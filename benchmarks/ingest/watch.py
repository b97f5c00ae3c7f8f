"""Until the count is complete: poll count() every 0.25 s, and re-check a short count before calling it a loss.

A path is done when the database counts every row. InfluxDB 1.6.7 can answer count()
short for tens of seconds after every write was acknowledged (issue 15; cf.
influxdata/influxdb#8169), so a count that stops short is not a loss yet: once the
writer has had every row acknowledged (the POSTs answered, Telegraf's metrics_written,
csv2lp's exit) and the count has not moved for STALL_S, influxd is restarted and
counted again. The result says which it was: complete, complete only after the restart
(the time is then the acknowledgement's), or lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .servers import Target

POLL_S = 0.25
STALL_S = 20.0  # no progress for this long after the last acknowledgement: re-check
NO_PROGRESS_S = 180.0  # no progress and no acknowledgement for this long: give up


@dataclass
class Progress:
    """What the writer of a path says about itself, asked at every poll."""

    acked_at: float | None = None  # monotonic time every row was acknowledged, once it was
    failed: str | None = None  # the writer stopped without writing everything

    def ack(self, at: float | None = None) -> None:
        if self.acked_at is None:
            self.acked_at = time.monotonic() if at is None else at


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
                  before_restart: Callable[[], None] = lambda: None, stall_s: float = STALL_S) -> Counted:
    """Poll until `field` is counted `expected` times; `on_poll` runs at every poll (Telegraf's numbers)."""
    count, changed_at = -1, started
    queries, query_seconds = 0, 0.0
    while True:
        on_poll()
        now = time.monotonic()
        try:
            current = target.count(field)
        except Exception as exc:  # noqa: BLE001 - a refused query is a result, with its text
            return Counted(None, max(count, 0), f"failed: count query: {exc}", _since(progress.acked_at, started))
        queries, query_seconds = queries + 1, query_seconds + time.monotonic() - now
        counted = _counting(queries, query_seconds)
        if current != count:
            count, changed_at = current, now
        acked = _since(progress.acked_at, started)
        if count >= expected:
            return Counted(now - started, count, "complete", acked, **counted)
        if progress.failed:
            return Counted(None, count, f"failed: {progress.failed}", acked, **counted)
        if progress.acked_at is not None and now - max(changed_at, progress.acked_at) > stall_s:
            stalled = now - max(changed_at, progress.acked_at)
            return _recheck(target, field, expected, started, progress, count, stalled, before_restart, counted)
        if progress.acked_at is None and now - changed_at > NO_PROGRESS_S:
            return Counted(None, count, f"failed: no progress for {NO_PROGRESS_S:.0f} s at {count:,} of "
                                        f"{expected:,}, and the writer had not finished", acked, **counted)
        if now - started > timeout:
            return Counted(None, count, f"failed: {count:,} of {expected:,} after the {timeout:.0f} s timeout",
                           acked, **counted)
        time.sleep(POLL_S)


def _counting(queries: int, seconds: float) -> dict:
    return {"queries": queries, "query_seconds": round(seconds, 2)}


def _since(at: float | None, started: float) -> float | None:
    return None if at is None else at - started


def _recheck(target: Target, field: str, expected: int, started: float, progress: Progress, count: int,
             stalled: float, before_restart: Callable[[], None], counted: dict) -> Counted:
    acked = _since(progress.acked_at, started)
    short = expected - count
    before_restart()
    target.restart()
    again = target.count(field)
    if again >= expected:
        return Counted(acked, again, f"count {short:,} short for {stalled:.0f} s after every write was "
                                     f"acknowledged; complete after an influxd restart (time: the "
                                     f"acknowledgement's)", acked, restarted=True, **counted)
    return Counted(None, again, f"lost {expected - again:,}: the count stayed short after an influxd restart",
                   acked, restarted=True, **counted)
