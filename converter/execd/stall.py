"""What the log says while flow control holds lines back: one W! line every STALL_REPORT_S
with the reason, and one I! line when sending goes on. A stall of a few seconds (an output
writing a batch) says nothing; an outage of an hour says so every half minute, no more."""

from __future__ import annotations

import time
from collections.abc import Callable

from .protocol import Log

STALL_REPORT_S = 30.0


class Stall:
    def __init__(self, log: Log, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.clock = clock
        self.since: float | None = None
        self._reported_at = 0.0

    def held(self, reason: Callable[[], str]) -> None:
        """Lines were held back once more; `reason()` says why, asked only when it is logged."""
        now = self.clock()
        if self.since is None:
            self.since = self._reported_at = now
            return
        if now - self._reported_at < STALL_REPORT_S:
            return
        self._reported_at = now
        self.log.warn(f"flow control: holding lines back for {now - self.since:.0f} s: {reason()}")

    def over(self) -> None:
        if self.since is not None and self.clock() - self.since >= STALL_REPORT_S:
            self.log.info(f"flow control: sending again after {self.clock() - self.since:.0f} s")
        self.since = None
