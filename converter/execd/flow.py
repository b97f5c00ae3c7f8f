"""Flow control: emit as fast as Telegraf's output drains, never more than its buffer may hold.

Telegraf's execd input has no backpressure: every line becomes a metric in each output's
memory buffer, and a full buffer drops its oldest metrics. A fixed pace (pacing.py) only
rides out outages shorter than it was sized for. Here the pace comes from Telegraf's own
numbers instead (telegraf_stats.py): each output's `buffer_size` B, stamped at time t by
the agent.

The bound. Let E(t) be the lines csv2lp had written to the pipe by time t. Every metric
in an output's buffer now was either there at t (at most B of them, ours or not) or is
one of our lines written after t, or was on its way at t (in the pipe, execd's reader,
the agent's channels: at most `reserve` lines). So, whatever happened since t,

    buffer now  <=  B + (E(now) - E(t)) + reserve

A report that is late, or that stops coming, only makes this bound looser, never wrong:
the lines emitted since t keep counting until a newer report says they left. The gate
lets a batch of n lines go only while, for every watched output,

    B + (E(now) - E(t)) + reserve + n  <=  window = max_fill * buffer_limit

so the buffer never exceeds the window: while an output is down, its B stops falling,
csv2lp stops after at most one window, for however long the outage lasts, and goes on
as the output drains. E(t) is read from a record of (time, lines written) taken after
each write; for a t between two records the earlier one is used, which can only
overstate what is outstanding.

Throughput: the agent reports every 250 ms (the shipped interval), so a window of W lines
carries up to about W / 0.35 s; 50,000 lines (half of the shipped 100,000-metric buffer)
allow ~140,000 lines/s, above what Telegraf relays on two cores (~98,000/s).

Tie to the replay window: if Telegraf itself is killed, its buffer is lost, and what is
lost is at most the window. A resumed file re-sends `replay_lines` lines from before its
checkpoint, so the window is capped at `replay_lines - reserve`: whatever the kill took,
the replay covers it (checkpoint.py, spooler.py).

Without Telegraf's numbers (no [flow] url, or the route not configured in the agent), the
fixed pace of [pacing] is the fallback, with a warning; the gate switches to flow control
as soon as the numbers appear.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .pacing import TokenBucket
from .protocol import Log
from .telegraf_stats import OutputBuffer, StatsClient, StatsUnavailable

# The agent's stamp may be rounded up to half a millisecond past its reading (telegraf_stats.py).
STAMP_MARGIN_S = 0.01
HISTORY_LIMIT = 200_000  # (time, lines) records: ~3 hours of batches at 20 a second
RETRY_FALLBACK_S = 5.0  # on the fixed pace: how often to look for Telegraf's numbers again
STALL_REPORT_S = 30.0
PROGRESS_EVERY_S = 10.0
ROUTE_PLUGIN = "prometheus_client"


@dataclass(frozen=True)
class FlowSettings:
    url: str  # "" turns flow control off: the fixed pace of [pacing]
    max_fill: float  # share of each output's buffer_limit csv2lp may fill
    outputs: tuple[str, ...]  # names or aliases to watch; () = every output but the route's own
    batch_lines: int
    reserve_lines: int  # lines that may be on their way into the buffer at a report's stamp
    poll_seconds: float
    wait_seconds: float  # at start: how long to wait for the numbers before falling back


class Gate(Protocol):
    """acquire(n) before n lines are written (False: stop), sent(n) after."""

    def acquire(self, lines: int) -> bool: ...

    def sent(self, lines: int) -> None: ...

    def window_lines(self) -> int | None: ...


class Unthrottled:
    """stdout is a file or a terminal: nobody's buffer to protect."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def acquire(self, lines: int) -> bool:
        return not self.stop.is_set()

    def sent(self, lines: int) -> None:
        pass

    def window_lines(self) -> int | None:
        return None


class FixedPace:
    """The fallback gate: [pacing]'s token bucket."""

    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket

    def acquire(self, lines: int) -> bool:
        return self.bucket.acquire(lines)

    def sent(self, lines: int) -> None:
        pass

    def window_lines(self) -> int | None:
        return None


class EmissionRecord:
    """E(t): lines written by time t, as a lower bound, from records taken after each write."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.total = 0
        self._records: deque[tuple[float, int]] = deque([(clock(), 0)])

    def add(self, lines: int) -> None:
        self.total += lines
        self._records.append((self.clock(), self.total))
        if len(self._records) > HISTORY_LIMIT:
            self._records.popleft()  # older stamps then read as "before anything": only more cautious

    def by(self, at: float) -> int:
        """Lines written by `at`: the last record at or before it (0 before the first record)."""
        records = self._records
        if at < records[0][0]:
            return 0 if records[0][1] == 0 else -1  # -1: unknown, pruned away
        low, high = 0, len(records) - 1
        while low < high:  # the last record with time <= at
            middle = (low + high + 1) // 2
            if records[middle][0] <= at:
                low = middle
            else:
                high = middle - 1
        return records[low][1]

    def forget_before(self, at: float) -> None:
        """Drop records no report older than `at` can need (the last one before it stays)."""
        while len(self._records) > 1 and self._records[1][0] <= at:
            self._records.popleft()


class FlowControl:
    """The gate under Telegraf with its numbers: acquire(n) before writing n lines, sent(n) after."""

    def __init__(self, settings: FlowSettings, fallback: FixedPace, *, replay_lines: int | None,
                 stop: threading.Event, log: Log, client: StatsClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.fallback = fallback
        self.replay_lines = replay_lines
        self.stop = stop
        self.log = log
        self.client = client or StatsClient(settings.url)
        self.clock = clock
        self.emitted = EmissionRecord(clock)
        self.buffers: dict[str, OutputBuffer] = {}
        self.mode = "starting"  # -> "flow" with numbers, "fallback" without
        self._started = time.monotonic()
        self._last_fetch = float("-inf")
        self._fetch_failing: str | None = None
        self._stalled_since: float | None = None
        self._last_stall_report = 0.0
        self._last_progress = time.monotonic()
        self._widest = 0

    # -- the gate ----------------------------------------------------------------------

    def acquire(self, lines: int) -> bool:
        while not self.stop.is_set():
            self._refresh(force=False)
            if self.mode == "fallback":
                return self.fallback.acquire(lines)
            if self.mode == "flow" and self._room() >= min(lines, self._smallest_window()):
                self._stall_over()
                return True
            self._stall_report()
            if self.stop.wait(self.settings.poll_seconds):
                break
            self._refresh(force=True)
        return False

    def sent(self, lines: int) -> None:
        self.emitted.add(lines)

    def window_lines(self) -> int | None:
        """The most lines any watched buffer may hold (None before the first numbers): the replay
        after a resume must cover that much, since a kill of Telegraf loses its buffer."""
        return self._widest or None

    # -- Telegraf's numbers ------------------------------------------------------------

    def _refresh(self, *, force: bool) -> None:
        now = time.monotonic()
        due = self.settings.poll_seconds if self.mode != "fallback" else RETRY_FALLBACK_S
        if not force and now - self._last_fetch < due:
            return
        if force and self.mode == "fallback" and now - self._last_fetch < RETRY_FALLBACK_S:
            return
        self._last_fetch = now
        try:
            buffers = self._watched(self.client.fetch())
        except StatsUnavailable as exc:
            self._no_numbers(str(exc))
            return
        if self._fetch_failing is not None or self.mode != "flow":
            names = ", ".join(f"{b.output} ({b.buffer_size:,} of {b.buffer_limit:,})" for b in buffers.values())
            self.log.info(f"flow control: Telegraf's buffer numbers from {self.settings.url}; watching {names}; "
                          f"each kept under {self.settings.max_fill:.0%} of its limit"
                          f"{self._cap_text(buffers)}")
        self._fetch_failing = None
        self.mode = "flow"
        for name, buffer in buffers.items():
            before = self.buffers.get(name)
            if before is not None and buffer.metrics_dropped > before.metrics_dropped:
                self.log.error(f"Telegraf's output {name} dropped {buffer.metrics_dropped - before.metrics_dropped:,} "
                               f"metrics from its buffer (metrics_dropped); lines of csv2lp may be among them")
            if before is None or buffer.at >= before.at:
                self.buffers[name] = buffer
        self.emitted.forget_before(min(b.at for b in self.buffers.values()) - STAMP_MARGIN_S)
        self._widest = max(self._window(b) + self.settings.reserve_lines for b in self.buffers.values())
        self._progress()

    def _watched(self, buffers: dict[str, OutputBuffer]) -> dict[str, OutputBuffer]:
        wanted = self.settings.outputs
        if wanted:
            missing = [name for name in wanted if name not in buffers]
            if missing:
                raise StatsUnavailable(f"{self.settings.url} has no numbers for output(s) {', '.join(missing)}; "
                                       f"it reports {', '.join(sorted(buffers)) or 'none'} ([flow] outputs)")
            return {name: buffers[name] for name in wanted}
        watched = {name: b for name, b in buffers.items() if b.plugin != ROUTE_PLUGIN}
        if not watched:
            raise StatsUnavailable(f"{self.settings.url} reports no output but {ROUTE_PLUGIN}")
        return watched

    def _no_numbers(self, reason: str) -> None:
        if self.mode == "flow":
            if self._fetch_failing is None:
                self.log.warn(f"flow control: Telegraf's numbers stopped coming ({reason}); emitting only what the "
                              f"last ones allow until they are back")
            self._fetch_failing = reason
            return
        if self.mode == "starting" and time.monotonic() - self._started < self.settings.wait_seconds:
            self._fetch_failing = reason
            return
        if self.mode == "starting":
            self.log.warn(f"flow control: no buffer numbers from Telegraf ({reason}); falling back to the fixed pace "
                          f"of [pacing], which protects only against short outages. Route [[inputs.internal]] to "
                          f"[[outputs.prometheus_client]] as telegraf/telegraf.conf does (telegraf/README.md)")
            self.mode = "fallback"

    # -- the bound ---------------------------------------------------------------------

    def _window(self, buffer: OutputBuffer) -> int:
        window = int(self.settings.max_fill * buffer.buffer_limit)
        if self.replay_lines is not None:
            window = min(window, self.replay_lines)  # whatever a kill of Telegraf takes, the replay covers
        return max(window - self.settings.reserve_lines, 1)

    def _smallest_window(self) -> int:
        return min(self._window(b) for b in self.buffers.values())

    def _outstanding(self, buffer: OutputBuffer) -> int | None:
        before = self.emitted.by(buffer.at - STAMP_MARGIN_S)
        if before < 0:
            return None
        return buffer.buffer_size + self.emitted.total - before

    def _room(self) -> int:
        room = None
        for buffer in self.buffers.values():
            outstanding = self._outstanding(buffer)
            if outstanding is None:
                return 0
            free = self._window(buffer) - outstanding
            room = free if room is None else min(room, free)
        return max(room or 0, 0)

    def _cap_text(self, buffers: dict[str, OutputBuffer]) -> str:
        if self.replay_lines is None:
            return ""
        capped = [b.output for b in buffers.values() if self.settings.max_fill * b.buffer_limit > self.replay_lines]
        return (f", and under replay_lines ({self.replay_lines:,}) for {', '.join(capped)}, so that a resumed file "
                f"re-sends whatever a kill of Telegraf could take" if capped else "")

    # -- what the log says -------------------------------------------------------------

    def _stall_report(self) -> None:
        now = time.monotonic()
        if self._stalled_since is None:
            self._stalled_since = now
            self._last_stall_report = now
            return
        if now - self._last_stall_report < STALL_REPORT_S:
            return
        self._last_stall_report = now
        if self.mode != "flow":
            self.log.info(f"flow control: waiting for Telegraf's numbers ({self._fetch_failing})")
            return
        full = ", ".join(f"{b.output} {b.buffer_size:,} of {b.buffer_limit:,}" for b in self.buffers.values())
        self.log.warn(f"flow control: holding lines back for {now - self._stalled_since:.0f} s: the output buffer is "
                      f"not draining ({full}); nothing is lost, sending goes on when it drains")

    def _stall_over(self) -> None:
        if self._stalled_since is not None and time.monotonic() - self._stalled_since >= STALL_REPORT_S:
            self.log.info(f"flow control: the output drains again after {time.monotonic() - self._stalled_since:.0f} s")
        self._stalled_since = None

    def _progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_EVERY_S:
            return
        self._last_progress = now
        state = ", ".join(f"{b.output} buffer {b.buffer_size:,} of {b.buffer_limit:,}, {b.metrics_written:,} written"
                          for b in self.buffers.values())
        self.log.debug(f"flow control: {self.emitted.total:,} lines emitted; {state}")
