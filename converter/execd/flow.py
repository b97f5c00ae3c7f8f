"""Flow control: emit as fast as Telegraf's output drains, never more than its buffer may hold,
and know which lines it has written.

Telegraf's execd input has no backpressure: every line becomes a metric in each output's
memory buffer, and a full buffer drops its oldest metrics. A fixed pace (pacing.py) only
rides out outages shorter than it was sized for. Here the pace comes from Telegraf's own
numbers instead (telegraf_stats.py, fetched by poller.py): each output's `buffer_size` B,
stamped at time t by the agent.

The bound. Every metric in an output's buffer now was either there at t (at most B of
them, ours or not) or was added after t. Of a writer's lines, those added after t are at
most what it has written (its claim C, raised before each write) less what it knew to
be added by t, A(t): its marks on Telegraf's page say how many of its lines had been
added to every output by the time the page was fetched (delivery.py). So

    buffer now  <=  B + sum over writers (C - A(t))

and the gate lets a batch of n lines go only while, for every watched output,

    B + sum over writers (C - A(t)) + n  <=  window = max_fill * buffer_limit

so the buffer never exceeds the window: while an output is down, its B stops falling,
the writers stop after at most one window between them, for however long the outage
lasts, and go on as it drains. With one csv2lp the sum has one term; with several under
one Telegraf (one [[inputs.execd]] per spool) they meet in a folder (coordination.py),
where each raises its claim under a lock. A report that is late, or that stops coming,
only makes the bound looser, never wrong: the lines written since t keep counting until
a newer report says they left. Without marks on the page (an old telegraf.conf) A(t) is
what was written by t less `reserve_lines`, the lines that may still be on their way
(the pipe, execd's reader, the agent's channel).

Throughput: the agent reports every 250 ms (the shipped interval), so a window of W lines
carries up to about W / 0.35 s; 50,000 lines (half of the shipped 100,000-metric buffer)
allow ~140,000 lines/s, above what Telegraf relays on two cores (~98,000/s).

The same numbers say when a batch is written to every output (delivery.py): the spooler
moves a file to done/ only then, and a restart re-sends what was not.

What the page says is checked (telegraf_stats.py). Without usable numbers (no [flow] url,
the route not configured, or a page that fails, lies or stalls) the gate falls back to
what is safe: at start, after wait_seconds, the fixed pace of [pacing], with a warning
(it switches to flow control as soon as the numbers appear); later, nothing beyond what
the last good numbers allow, and a log line that names what is wrong with the numbers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .coordination import Coordination, History, Peer
from .delivery import STAMP_MARGIN_S, Delivery
from .gates import FixedPace, FlowSettings
from .poller import Poller
from .protocol import Log
from .stall import Stall
from .telegraf_stats import (FLOW_TAG, MARK_MEASUREMENT, STALE_S, FlowRefused, OutputBuffer, Page,
                             StatsClient, StatsUnavailable, watched_outputs)

RETRY_FALLBACK_S = 5.0  # on the fixed pace: how often to look for Telegraf's numbers again
MARK_WAIT_S = 30.0  # numbers but none of our marks for this long: the page does not show marks
PROGRESS_EVERY_S = 10.0


class FlowControl:
    """The gate under Telegraf with its numbers (see the module docstring)."""

    def __init__(self, settings: FlowSettings, fallback: FixedPace, *, replay_lines: int | None,
                 stop: threading.Event, log: Log, writer: str, coordination: Coordination | None = None,
                 client: Any = None, clock: Callable[[], float] = time.time, threaded: bool = True) -> None:
        self.settings = settings
        self.fallback = fallback
        self.replay_lines = replay_lines
        self.stop = stop
        self.log = log
        self.writer = writer
        self.coordination = coordination
        self.client = client or StatsClient(settings.url)
        self.clock = clock
        self.delivery = Delivery()
        self.buffers: dict[str, OutputBuffer] = {}
        self._before_write: dict[str, OutputBuffer] = {}
        self.mode = "starting"  # -> "flow" with numbers, "fallback" without
        self.problem: str | None = None  # what is wrong with the numbers now, if anything
        self.emitted = 0  # lines written by this process
        self.claim = 0  # lines written or about to be (>= emitted): what the bound counts
        self.by_marks = History()  # from our marks on the page: lines added to every output
        self.by_writes = History(-settings.reserve_lines)  # without marks: written less the reserve
        self.marks = "unknown"  # -> "seen" once a mark of ours is on the page, "missing" if none ever comes
        self._cond = threading.Condition()
        self._started = time.monotonic()
        self._first_mark_at: float | None = None
        self._why = ""  # why the last acquire found no room
        self._waiting = False
        self._stall = Stall(log)
        self._last_progress = time.monotonic()
        self._widest = 0
        self._said: set[str] = set()  # one-off warnings already logged
        self._foreign: dict[str, int] = {}  # marks of writers outside our coordination folder
        self._peer_names: set[str] = set()  # every writer ever seen in the coordination folder
        self.refused: str | None = None
        self._sync_fetch_at = float("-inf")
        self._poller = Poller(self.client, settings.poll_seconds, self._on_result, stop) if threaded else None

    # -- the gate ----------------------------------------------------------------------

    def acquire(self, lines: int) -> bool:
        while not self.stop.is_set():
            self._ask_for_numbers()
            if self.refused is not None:
                raise FlowRefused(self.refused)
            if self.mode == "fallback":
                return self.fallback.acquire(lines)
            if self.mode == "flow" and self._claim(lines):
                self._stall.over()
                return True
            self._set_waiting(True)
            self._stall.held(self._held_reason)
            self._wait_for_page(self.settings.poll_seconds)
        return False

    def sent(self, lines: int, ref: Any) -> tuple[bytes | None, bool]:
        with self._cond:
            self.emitted += lines
            self.claim = max(self.claim, self.emitted)
            self.by_writes.add(self.clock(), self.emitted - self.settings.reserve_lines)
            strong = self.mode == "flow" and self.marks != "missing" and bool(self._before_write)
            if self._first_mark_at is None and strong:
                self._first_mark_at = time.monotonic()
            self.delivery.add(self.emitted, ref, self._before_write if strong else None)
            self._before_write = {}
        mark = f"{MARK_MEASUREMENT},{FLOW_TAG[0]}={FLOW_TAG[1]},writer={self.writer} lines={self.emitted}i\n"
        return mark.encode(), strong

    def delivered(self) -> list[tuple[Any, bool]]:
        with self._cond:
            return self.delivery.delivered()

    def pending(self) -> bool:
        return self.delivery.waiting

    def lost(self) -> str | None:
        return self.delivery.lost

    def forget_pending(self) -> None:
        with self._cond:
            self.delivery.restart()

    def wait_for_delivery(self, seconds: float) -> None:
        """Idle with batches in Telegraf's buffer: keep the numbers coming, wait for the next page."""
        self._ask_for_numbers()
        self._set_waiting(False)
        self._wait_for_page(seconds)

    def window_lines(self) -> int | None:
        """The most lines any watched buffer may hold (None before the first numbers): without
        marks the replay after a resume must cover that much, since a kill of Telegraf loses its buffer."""
        return self._widest or None

    def close(self) -> None:
        if self.coordination is not None:
            self.coordination.close()

    # -- the bound ---------------------------------------------------------------------

    def _history(self) -> History:
        return self.by_writes if self.marks == "missing" else self.by_marks

    def _window(self, buffer: OutputBuffer) -> int:
        window = int(self.settings.max_fill * buffer.buffer_limit)
        if self.replay_lines is not None and self.marks == "missing":
            window = min(window, self.replay_lines + self.settings.reserve_lines)  # the replay covers a kill
        return max(window, 1)

    @contextmanager
    def _others(self) -> Iterator[list[Peer]]:
        if self.coordination is None:
            yield []
            return
        with self.coordination.exclusive() as peers:
            self._peer_names.update(p.writer for p in peers)  # read by the poller: never take this lock there
            yield peers

    def _claim(self, lines: int) -> bool:
        """Room for `lines` in every watched buffer, with every writer's claim counted: claim it."""
        with self._others() as peers:
            with self._cond:
                room = self._room(lines, peers)
                if room:
                    self.claim += lines
                    self._waiting = False
                    self._before_write = dict(self.buffers)  # the batch's baseline: reports from before it
                claim, added = self.claim, self._recent()
            if room and self.coordination is not None:
                self.coordination.publish(claim=claim, added=added, waiting=False)
        return room

    def _room(self, lines: int, peers: list[Peer]) -> bool:
        now = self.clock()
        if not self.buffers:
            self._why = "no numbers yet"
            return False
        stale = [b for b in self.buffers.values() if now - b.at > STALE_S]
        if stale:
            self._why = (f"Telegraf's newest numbers of {stale[0].output} are {now - stale[0].at:.0f} s old "
                         f"(is [[inputs.internal]] still reporting?)")
            return False
        history = self._history()
        others_waiting = any(p.waiting for p in peers if p.alive)
        for buffer in self.buffers.values():
            at = buffer.at - STAMP_MARGIN_S
            added = history.by(at)
            if added is None:
                self._why = "Telegraf's numbers are older than what csv2lp remembers"
                return False
            mine = self.claim - added
            theirs = sum(max(0, p.outstanding(at)) for p in peers)
            window = self._window(buffer)
            free = window - buffer.buffer_size - mine - theirs
            if free < min(lines, window):
                self._why = (f"the output buffer is not draining ({self._fill_text()})" if not theirs else
                             f"the output buffer is full with the lines of {len(peers) + 1} csv2lp "
                             f"({self._fill_text()})")
                return False
            if others_waiting and mine > 0:
                active = 1 + sum(1 for p in peers if p.waiting or p.outstanding(at) > 0)
                if mine + lines > window // active:
                    self._why = f"its share of the window, 1/{active}: other csv2lp are waiting ({self._fill_text()})"
                    return False
        return True

    def _recent(self) -> list[tuple[float, int]]:
        """What the other writers need of our history: the entries a fresh report can ask about."""
        entries = self._history().entries
        cut = self.clock() - STALE_S - 1.0
        first = max(0, next((i for i, (t, _) in enumerate(entries) if t > cut), len(entries)) - 1)
        return list(entries[first:])

    def _fill_text(self) -> str:
        return ", ".join(f"{b.output} {b.buffer_size:,} of {b.buffer_limit:,}" for b in self.buffers.values())

    def _set_waiting(self, waiting: bool) -> None:
        if waiting == self._waiting or self.coordination is None:
            self._waiting = waiting
            return
        self._waiting = waiting
        with self._cond:
            claim, added = self.claim, self._recent()
        self.coordination.update(claim=claim, added=added, waiting=waiting)

    # -- Telegraf's numbers ------------------------------------------------------------

    def _ask_for_numbers(self) -> None:
        if self._poller is not None:
            self._poller.interval = RETRY_FALLBACK_S if self.mode == "fallback" else self.settings.poll_seconds
            self._poller.want()
            return
        due = RETRY_FALLBACK_S if self.mode == "fallback" else 0.0  # tests: fetch in this thread
        if time.monotonic() - self._sync_fetch_at >= due:
            self._sync_fetch_at = time.monotonic()
            try:
                result: Page | StatsUnavailable = self.client.fetch()
            except StatsUnavailable as exc:
                result = exc
            self._on_result(result)

    def _wait_for_page(self, seconds: float) -> None:
        if self._poller is None:
            self.stop.wait(seconds)
            return
        with self._cond:
            self._cond.wait(seconds)

    def _on_result(self, result: Page | StatsUnavailable) -> None:
        """Each page or failure, in order (the poller's thread)."""
        try:
            with self._cond:
                publish = self._take(result)
                self._cond.notify_all()
                claim, added, waiting = self.claim, self._recent(), self._waiting
            if publish and self.coordination is not None:
                self.coordination.update(claim=claim, added=added, waiting=waiting)
        except Exception as exc:  # a bug of ours: the numbers count as unavailable, loudly
            self._once("bug", f"flow control: cannot use Telegraf's numbers: {type(exc).__name__}: {exc}; "
                              f"please report this", level="error")
            with self._cond:
                self._no_numbers(f"{type(exc).__name__}: {exc}")
                self._cond.notify_all()

    def _take(self, result: Page | StatsUnavailable) -> bool:
        """Use one page; True when our marks moved (the coordination file must say so)."""
        if isinstance(result, StatsUnavailable):
            self._no_numbers(str(result))
            return False
        page = result
        try:
            watched = watched_outputs(page, self.settings.outputs, self.settings.url)
        except FlowRefused as exc:
            self.refused = str(exc)
            self._no_numbers(str(exc))
            return False
        except StatsUnavailable as exc:
            self._no_numbers(str(exc))
            return False
        if self.problem is not None or self.mode != "flow":
            names = ", ".join(f"{b.output} ({b.buffer_size:,} of {b.buffer_limit:,})" for b in watched.values())
            self.log.info(f"flow control: Telegraf's buffer numbers from {self.settings.url}; watching {names}; "
                          f"each kept under {self.settings.max_fill:.0%} of its limit")
        if not page.per_instance:
            self._once("per_instance", "flow control: Telegraf sums the numbers of outputs of one plugin "
                                       "([[inputs.internal]] per_instance = false): two [[outputs.influxdb_v2]] "
                                       "would look like one; set per_instance = true as telegraf/telegraf.conf does")
        self.problem = None
        self.mode = "flow"
        for name, buffer in watched.items():
            before = self.buffers.get(name)
            if before is not None and buffer.metrics_dropped > before.metrics_dropped:
                self.log.error(f"Telegraf's output {name} dropped {buffer.metrics_dropped - before.metrics_dropped:,} "
                               f"metrics from its buffer (metrics_dropped); lines of csv2lp may be among them")
            if before is None or buffer.at >= before.at:
                self.buffers[name] = buffer
        moved = self._take_marks(page)
        self.delivery.on_page(watched, page.marks.get(self.writer), page.fetched_at)
        for name, count in self.delivery.rejected.items():
            self.log.error(f"Telegraf's output {name} refused {count:,} metrics as bad data (metrics_rejected); "
                           f"Telegraf's log says why; csv2lp does not send them again")
        self.delivery.rejected.clear()
        if self.delivery.broken is not None:
            self._once("broken", f"flow control: {self.delivery.broken}; nothing more is confirmed by this csv2lp, "
                                 f"its next start sends again every line not confirmed")
        self._widest = max(self._window(b) for b in self.buffers.values())
        self._progress()
        return moved

    def _take_marks(self, page: Page) -> bool:
        mark = page.marks.get(self.writer)
        moved = False
        if mark is not None:
            if self.marks == "unknown":
                self.marks = "seen"
            if mark > (self.by_marks.entries[-1][1] if self.by_marks.entries else 0):
                self.by_marks.add(page.fetched_at, mark)
                moved = True
        elif (self.marks == "unknown" and self._first_mark_at is not None
              and time.monotonic() - self._first_mark_at >= MARK_WAIT_S):
            self.marks = "missing"
            self.delivery.weaken()
            self.log.warn(f"flow control: csv2lp's marks ({MARK_MEASUREMENT}, tagged {FLOW_TAG[0]} = "
                          f"\"{FLOW_TAG[1]}\") do not show on {self.settings.url} after {MARK_WAIT_S:.0f} s: "
                          f"csv2lp cannot tell when Telegraf has written a line, so a file counts as sent once it is "
                          f"in the pipe (the [[outputs.prometheus_client]] of telegraf/telegraf.conf takes them)")
        for writer, value in page.marks.items():
            if writer == self.writer or writer in self._peer_names:
                continue
            before = self._foreign.setdefault(writer, value)
            if value != before:
                self._once(f"foreign {writer}",
                           f"flow control: another csv2lp (writer {writer}) sends to this Telegraf without sharing "
                           f"this csv2lp's [flow] coordination_dir ({self.settings.coordination_dir or 'none'}): "
                           f"the buffer bound holds only among writers that share one; give every csv2lp.toml the "
                           f"same coordination_dir", level="error")
        return moved

    def _no_numbers(self, reason: str) -> None:
        if self.mode == "flow":
            if self.problem is None:
                self.log.warn(f"flow control: Telegraf's numbers stopped coming ({reason}); emitting only what the "
                              f"last ones allow until they are back")
            self.problem = reason
            return
        self.problem = reason
        if self.mode == "starting" and time.monotonic() - self._started >= self.settings.wait_seconds:
            self.log.warn(f"flow control: no buffer numbers from Telegraf ({reason}); falling back to the fixed pace "
                          f"of [pacing], which protects only against short outages. Route [[inputs.internal]] to "
                          f"[[outputs.prometheus_client]] as telegraf/telegraf.conf does (telegraf/README.md)")
            self.mode = "fallback"

    # -- what the log says -------------------------------------------------------------

    def _once(self, key: str, message: str, *, level: str = "warn") -> None:
        if key not in self._said:
            self._said.add(key)
            getattr(self.log, level)(message)

    def _held_reason(self) -> str:
        if self.problem is not None or self.mode != "flow":
            return (f"no usable numbers from Telegraf ({self.problem or 'none yet'}); nothing is lost, sending goes "
                    f"on when they are back")
        return f"{self._why}; nothing is lost, sending goes on when it drains"

    def _progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_EVERY_S:
            return
        self._last_progress = now
        state = ", ".join(f"{b.output} buffer {b.buffer_size:,} of {b.buffer_limit:,}, {b.metrics_written:,} written"
                          for b in self.buffers.values())
        self.log.debug(f"flow control: {self.emitted:,} lines emitted, {len(self.delivery.pending)} batches not yet "
                       f"confirmed; {state}")
