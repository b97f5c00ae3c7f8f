"""How fast execd may print lines so that Telegraf's output buffer never overflows.

Telegraf's execd input has no backpressure: every line becomes a metric in the output's
buffer of `metric_buffer_limit` (B) metrics, written in batches of `metric_batch_size`
(b). While the output is down nothing leaves the buffer, and once it is full the oldest
metrics are dropped. After a failed write Telegraf tries again only at the next flush,
`flush_interval` (F) seconds later. Printing at most P lines per second, an outage of T
seconds loses nothing as long as

    P * (T + F) + 2 * b <= B        (one batch in flight, one batch of ours arriving)

so for a wanted T:   P = (B - 2b) / (T + F)   and for a given P:   T = (B - 2b) / P - F.

Lines go out in batches of about half a second's worth (at most b), each followed by a
checkpoint: small enough that a stop request waits for little more than one batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConverterError

BATCH_SECONDS = 0.5


@dataclass(frozen=True)
class Pace:
    lines_per_second: float  # 0: as fast as the pipe takes them
    batch_lines: int
    outage_seconds: float | None  # the output outage this pace rides out; None when unpaced

    def describe(self) -> str:
        if not self.lines_per_second:
            return (f"unpaced, batches of {self.batch_lines:,} lines; an output outage can overflow "
                    f"Telegraf's buffer (use buffer_strategy = \"disk\")")
        return (f"{self.lines_per_second:,.0f} lines/s in batches of {self.batch_lines:,}; "
                f"rides out an output outage of {self.outage_seconds:,.0f} s")


def outage_ridden_out(*, metric_batch_size: int, metric_buffer_limit: int, flush_interval_seconds: float,
                      lines_per_second: float) -> float:
    """T = (B - 2b) / P - F: the longest output outage that drops nothing at P lines/s."""
    return (metric_buffer_limit - 2 * metric_batch_size) / lines_per_second - flush_interval_seconds


def derive_pace(*, metric_batch_size: int, metric_buffer_limit: int, flush_interval_seconds: float,
                outage_seconds: float, lines_per_second: float | None = None,
                batch_lines: int | None = None) -> Pace:
    """The pace from Telegraf's [agent] settings and the outage to ride out; explicit values win."""
    if metric_batch_size < 1 or flush_interval_seconds <= 0 or outage_seconds < 0:
        raise ConverterError("[pacing] metric_batch_size must be >= 1, flush_interval_seconds > 0 "
                             "and outage_seconds >= 0.")
    room = metric_buffer_limit - 2 * metric_batch_size
    if room <= 0:
        raise ConverterError(
            f"[pacing] metric_buffer_limit ({metric_buffer_limit:,}) must be more than twice metric_batch_size "
            f"({metric_batch_size:,}), or Telegraf's buffer overflows with the output up; raise it in telegraf.conf "
            f"and here."
        )
    if lines_per_second is None:
        lines_per_second = room / (outage_seconds + flush_interval_seconds)
    if lines_per_second < 0:
        raise ConverterError("[pacing] lines_per_second must be >= 0 (0 turns pacing off).")
    if not lines_per_second:
        return Pace(0.0, batch_lines or metric_batch_size, None)
    if batch_lines is None:
        batch_lines = min(metric_batch_size, max(1, int(lines_per_second * BATCH_SECONDS)))
    if batch_lines < 1:
        raise ConverterError("[pacing] batch_lines must be >= 1.")
    outage = outage_ridden_out(metric_batch_size=metric_batch_size, metric_buffer_limit=metric_buffer_limit,
                               flush_interval_seconds=flush_interval_seconds, lines_per_second=lines_per_second)
    return Pace(float(lines_per_second), batch_lines, max(0.0, outage))


class TokenBucket:
    """Lets n lines go every n / P seconds, and no credit piles up while idle or slow.

    `acquire` waits on the `stop` event, so a stop request ends the wait at once.
    """

    def __init__(self, lines_per_second: float, stop: threading.Event,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lines_per_second = lines_per_second
        self.stop = stop
        self.clock = clock
        self._next = clock()

    def acquire(self, lines: int) -> bool:
        """Wait until `lines` may go; False (without waiting further) when stop is set."""
        if self.stop.is_set():
            return False
        if not self.lines_per_second:
            return True
        now = self.clock()
        self._next = max(self._next, now)
        wait = self._next - now
        if wait > 0 and self.stop.wait(wait):
            return False
        self._next += lines / self.lines_per_second
        return True
