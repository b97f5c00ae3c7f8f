"""What the spooler asks before and after each batch (the Gate), and the gates that need no
numbers from Telegraf: nothing at all for a file or a terminal, the fixed pace of [pacing].

A gate answers three questions: may n lines go now (`acquire`), what to write after them
(`sent` returns the delivery mark, or None), and which batches are delivered (`delivered`,
in the order they were written). The gates here cannot see Telegraf's buffers, so a batch
counts as delivered once it is written: the weak promise (telegraf/README.md says what it
covers). flow.py's FlowControl is the gate that waits for Telegraf's own numbers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from .coordination import Coordination
from .pacing import TokenBucket

SHARE_EVERY_S = 5.0  # on the fixed pace: how often the number of writers sharing it is looked up


@dataclass(frozen=True)
class FlowSettings:
    url: str  # "" turns flow control off: the fixed pace of [pacing]
    max_fill: float  # share of each output's buffer_limit csv2lp may fill
    outputs: tuple[str, ...]  # names or aliases to watch; () = every output but the route's own
    batch_lines: int
    reserve_lines: int  # lines that may be on their way into the buffer at a report's stamp (without marks)
    poll_seconds: float
    wait_seconds: float  # at start: how long to wait for the numbers before falling back
    coordination_dir: str = ""  # the folder several csv2lp under one Telegraf share ("" = none)


class Gate(Protocol):
    """acquire(n) before n lines are written (False: stop); sent(n, ref) after, which returns
    (a mark to write after them or None, whether the batch waits for Telegraf's confirmation);
    delivered() then hands back (ref, confirmed) in order: confirmed True when Telegraf wrote
    the lines to every watched output, False when they only left csv2lp (no numbers to tell)."""

    def acquire(self, lines: int) -> bool: ...

    def sent(self, lines: int, ref: Any) -> tuple[bytes | None, bool]: ...

    def delivered(self) -> list[tuple[Any, bool]]: ...

    def pending(self) -> bool: ...

    def lost(self) -> str | None: ...

    def forget_pending(self) -> None: ...

    def wait_for_delivery(self, seconds: float) -> None: ...

    def window_lines(self) -> int | None: ...

    def close(self) -> None: ...


class _Written:
    """The gates without Telegraf's numbers: a batch is delivered once it is written."""

    stop: threading.Event

    def __init__(self) -> None:
        self._done: list[tuple[Any, bool]] = []

    def sent(self, lines: int, ref: Any) -> tuple[bytes | None, bool]:
        self._done.append((ref, False))
        return None, False

    def delivered(self) -> list[tuple[Any, bool]]:
        done, self._done = self._done, []
        return done

    def pending(self) -> bool:
        return False

    def lost(self) -> str | None:
        return None

    def forget_pending(self) -> None:
        pass

    def wait_for_delivery(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def window_lines(self) -> int | None:
        return None

    def close(self) -> None:
        pass


class Unthrottled(_Written):
    """stdout is a file or a terminal: nobody's buffer to protect."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__()
        self.stop = stop

    def acquire(self, lines: int) -> bool:
        return not self.stop.is_set()


class FixedPace(_Written):
    """The fallback gate: [pacing]'s token bucket, shared evenly by the writers of one coordination
    folder (each of n running csv2lp takes 1/n of lines_per_second, so together they keep the pace)."""

    def __init__(self, bucket: TokenBucket, coordination: Coordination | None = None) -> None:
        super().__init__()
        self.bucket = bucket
        self.stop = bucket.stop
        self.coordination = coordination
        self.full_rate = bucket.lines_per_second
        self._shared_at = float("-inf")

    def acquire(self, lines: int) -> bool:
        if self.coordination is not None and self.full_rate and time.monotonic() - self._shared_at >= SHARE_EVERY_S:
            self._shared_at = time.monotonic()
            self.bucket.lines_per_second = self.full_rate / self.coordination.live_writers()
        return self.bucket.acquire(lines)
