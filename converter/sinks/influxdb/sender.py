"""One connection's thread: its chunks, one request at a time, retried, and counted in the books.

Each connection has a bounded queue of jobs (a chunk and the future of its gzip'd body,
compressed ahead on a worker thread), and one thread that sends them in queue order:
the next request on a connection leaves only when the previous one is answered. A chunk
is retried with exponential backoff on 429, 5xx and lost connections, and given up after
`max_retries` retries or `max_retry_time_s` after its first try, whichever comes first: no
try starts later, and the last one's timeout is cut to end by then (to no less than 1 s).
Any other answer is a refusal. The first refusal (or give-up) on any connection stops
every connection: what is queued is counted as not sent, a request waiting for its retry
is not sent again.

Until the first request of the run is confirmed, requests go one at a time over all
connections (`FirstRequestGate`): a wrong token, org or database is refused once, not
once per connection.
"""

from __future__ import annotations

import queue
import random
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from ...mapping import Precision
from .chunks import Chunk
from .server import CONNECTION_ERRORS, Answer, InfluxTarget, describe_failure, hint, request

Notify = Callable[[str], None]

# zlib level 1: 211 MB/s and 7.5x smaller on Movebank lines here, against 92 MB/s and 9.8x at
# level 6 (measured on 5,000-line chunks of the generated 1M-row file). The server inflates
# both at the same cost, and the client's CPU is shared with the conversion and, on one
# machine, with the server itself.
GZIP_LEVEL = 1
# The shortest timeout a last try gets when little of max_retry_time is left: shorter ones
# fail on a healthy server's ordinary latency.
MIN_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class WriteSettings:
    """Batching, connections and retries. The defaults ride out a server restart of a few minutes.

    Retry k waits a random time in [retry_interval * base**(k-1), retry_interval * base**k]
    (or what a Retry-After header asks for), capped at max_retry_delay; a chunk is given up
    after max_retries retries or max_retry_time seconds from its first try, whichever comes
    first: a retry whose wait would end after max_retry_time is not made, and a try's timeout
    (timeout_s) is cut to what is left of max_retry_time.
    """

    batch_lines: int = 5_000
    # InfluxDB 1.x refuses bodies over 25 MB, Telegraf's listener over 32 MiB (before gzip).
    max_batch_bytes: int = 8 << 20
    # Requests in flight at once, each on its own connection; lines of one timestamp always
    # share one (chunks.py), so duplicate points land in file order.
    connections: int = 2
    retry_interval_s: float = 2.0
    exponential_base: float = 2.0
    max_retry_delay_s: float = 60.0
    max_retries: int = 8
    max_retry_time_s: float = 300.0
    timeout_s: float = 30.0
    gzip: bool = True
    # Chunks handed over but not answered yet, over all connections: beyond this the
    # converter waits, so a slow or absent server holds back reading instead of filling memory.
    max_pending_chunks: int = 8

    def __post_init__(self) -> None:
        if self.batch_lines < 1:
            raise ValueError(f"--batch-lines must be at least 1, got {self.batch_lines}.")
        if self.connections < 1:
            raise ValueError(f"--connections must be at least 1, got {self.connections}.")

    @property
    def queue_per_connection(self) -> int:
        """Jobs waiting per connection besides the one in flight."""
        return max(1, self.max_pending_chunks // self.connections - 1)

    @property
    def give_up_after_s(self) -> float:
        """An upper bound on how long one chunk can take, all retries included: max_retry_time, and one
        timeout of slack (a timeout bounds each wait on the socket, and an answer takes several)."""
        return self.max_retry_time_s + self.timeout_s

    def backoff_s(self, retry: int, asked_s: float | None = None) -> float:
        if asked_s is not None:
            return min(max(asked_s, 0.0), self.max_retry_delay_s)
        low = self.retry_interval_s * self.exponential_base ** (retry - 1)
        return min(random.uniform(low, low * self.exponential_base), self.max_retry_delay_s)


def compress(chunk: Chunk, *, gzip: bool) -> list:
    """The request body as pieces to send one after the other: the chunk's own buffers (no copy)
    or their gzip'd bytes (zlib releases the GIL while it deflates)."""
    if not gzip:
        return [memoryview(piece) for piece in chunk.pieces]
    deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: a gzip header and trailer
    return [b"".join([*(deflate.compress(piece) for piece in chunk.pieces), deflate.flush()])]


@dataclass
class Books:
    """Where every line handed to the sink is. Updated under `lock` by the sender threads."""

    lines_handed: int = 0
    lines_confirmed: int = 0
    lines_refused: int = 0  # in requests the server refused
    lines_given_up: int = 0  # in requests whose retries ran out, or that were waiting for a retry at the stop
    lines_not_sent: int = 0  # queued when the run stopped
    requests_sent: int = 0  # tries included
    requests_confirmed: int = 0
    requests_refused: int = 0
    requests_given_up: int = 0
    retries: int = 0
    failure: str | None = None  # the first refusal or give-up, in words (secrets masked)
    requests_sent_at_failure: int | None = None  # requests that had left when the first failure came back
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    stopping: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def lines_unconfirmed(self) -> int:
        return self.lines_handed - self.lines_confirmed

    def sending(self) -> None:
        with self.lock:
            self.requests_sent += 1

    def confirm(self, lines: int) -> None:
        with self.lock:
            self.lines_confirmed += lines
            self.requests_confirmed += 1

    def fail(self, lines: int, text: str, *, refused: bool) -> None:
        """A refused or given-up request: the first one is the run's failure and stops it."""
        with self.lock:
            if refused:
                self.lines_refused += lines
                self.requests_refused += 1
            else:
                self.lines_given_up += lines
                self.requests_given_up += 1
            if self.failure is None:
                self.failure = text
                self.requests_sent_at_failure = self.requests_sent
            self.stopping.set()

    def abandon(self, lines: int) -> None:
        """A request that was waiting for its retry when another one failed: not sent again."""
        with self.lock:
            self.lines_given_up += lines
            self.requests_given_up += 1

    def not_sent(self, lines: int) -> None:
        with self.lock:
            self.lines_not_sent += lines


class FirstRequestGate:
    """Requests pass one at a time over all connections until one has been confirmed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.opened = threading.Event()

    @contextmanager
    def turn(self) -> Iterator[None]:
        if self.opened.is_set():
            yield
            return
        with self._lock:
            yield


@dataclass
class Job:
    chunk: Chunk
    body: Future


class Sender(threading.Thread):
    """The thread of one connection (see the module docstring)."""

    def __init__(self, index: int, target: InfluxTarget, precision: Precision, settings: WriteSettings,
                 books: Books, gate: FirstRequestGate, notify: Notify | None) -> None:
        super().__init__(name=f"csv2lp-influx-{index}", daemon=True)
        self.target = target
        self.settings = settings
        self.books = books
        self.gate = gate
        self.notify = notify
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=settings.queue_per_connection)
        self._path = target.write_path(precision)
        self._headers = {**target.auth_headers(), "Content-Type": "text/plain; charset=utf-8"}
        if settings.gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._connection = target.connect(settings.timeout_s)

    def run(self) -> None:
        try:
            while (job := self.jobs.get()) is not None:
                if self.books.stopping.is_set():
                    job.body.cancel()
                    self.books.not_sent(job.chunk.lines)
                    continue
                try:
                    self._send(job.chunk, job.body.result())
                except Exception as exc:  # pragma: no cover - a bug: said once, counted, never a traceback
                    self.books.fail(job.chunk.lines, f"{self.target.where}: a write request failed inside csv2lp "
                                    f"({type(exc).__name__}: {self.target.mask(str(exc))}); please report it.",
                                    refused=False)
        finally:
            self._connection.close()

    def _send(self, chunk: Chunk, body: list) -> None:
        began = time.monotonic()
        retry = 0
        while True:
            with self.gate.turn():
                if self.books.stopping.is_set():
                    (self.books.abandon if retry else self.books.not_sent)(chunk.lines)
                    return
                self.books.sending()
                left = self.settings.max_retry_time_s - (time.monotonic() - began)
                self._set_timeout(max(min(self.settings.timeout_s, left), MIN_TIMEOUT_S))
                answer, failure = self._post(body)
                if answer is not None and answer.ok:
                    self.books.confirm(chunk.lines)
                    self.gate.opened.set()
                    return
            if answer is not None and not answer.retryable:
                self.books.fail(chunk.lines, self.target.mask(
                    f"{self.target.where} refused a write request: {answer.describe()}."
                    f"{hint(answer.status, self.target, no_route=answer.no_route)}"), refused=True)
                return
            said = answer.describe() if answer is not None else failure
            retry += 1
            waited = time.monotonic() - began
            delay = self.settings.backoff_s(retry, _retry_after(answer))
            if retry > self.settings.max_retries or waited + delay >= self.settings.max_retry_time_s:
                self.books.fail(chunk.lines, self.target.mask(
                    f"{self.target.where}: a write request failed {retry} times in {waited:.0f} s, the last time "
                    f"with {said}; csv2lp gave up.{hint(None if answer is None else answer.status, self.target)}"),
                    refused=False)
                return
            with self.books.lock:
                self.books.retries += 1
            if self.notify is not None:
                self.notify(self.target.mask(
                    f"write to {self.target.url} failed ({said}); retrying (retry {retry}, up to "
                    f"{self.settings.max_retries} per request) in {delay:.1f} s"))
            if self.books.stopping.wait(delay):
                self.books.abandon(chunk.lines)  # another request failed meanwhile
                return

    def _set_timeout(self, seconds: float) -> None:
        """The timeout of the next try, on the open socket too (http.client reads it at connect only)."""
        self._connection.timeout = seconds
        if self._connection.sock is not None:
            self._connection.sock.settimeout(seconds)

    def _post(self, body: list) -> tuple[Answer | None, str]:
        try:
            return request(self._connection, "POST", self._path, body=body, headers=self._headers), ""
        except CONNECTION_ERRORS as exc:
            self._connection.close()  # the next try opens a new one
            return None, describe_failure(exc)


def _retry_after(answer: Answer | None) -> float | None:
    """Seconds a 429/503 asks to wait (Retry-After in seconds; an HTTP date is ignored)."""
    value = answer.headers.get("retry-after", "") if answer is not None else ""
    try:
        return float(value) if value.strip() else None
    except ValueError:
        return None
