"""The LineSink that writes to InfluxDB: blocks of lines in, confirmed requests out, exact books."""

from __future__ import annotations

import itertools
import os
import queue
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pyarrow as pa

from ...arrow_buffers import offsets_of
from ...mapping import Precision
from .buckets import create_bucket_if_missing
from .chunks import Batcher, Chunk, split_by_route
from .sender import Books, FirstRequestGate, Job, Notify, Sender, WriteSettings, compress
from .server import (
    Api,
    InfluxTarget,
    InfluxWriteError,
    check_url,
    detect_api,
    is_loopback,
    read_credentials,
    require_token,
)

# How often a converter blocked on a full queue looks whether the run was stopped.
_POLL_S = 0.25


class InfluxSink:
    """Lines to a server's write API over `settings.connections` connections (see the package docstring).

    `write_lines` returns once the lines are queued; it blocks while the queues are full,
    which holds back the reading. After the first refused or given-up request it raises
    InfluxWriteError with the final counts; so does `close()` unless every line was confirmed.
    """

    def __init__(self, target: InfluxTarget, *, precision: Precision = Precision.NS,
                 settings: WriteSettings = WriteSettings(), notify: Notify | None = None) -> None:
        self.target = target
        self.precision = precision
        self.settings = settings
        self.books = Books()
        self.bytes_written = 0  # bytes of line protocol handed over (before gzip)
        self.seconds = 0.0
        self._batchers = [Batcher(batch_lines=settings.batch_lines, max_bytes=settings.max_batch_bytes)
                          for _ in range(settings.connections)]
        gate = FirstRequestGate()
        self._senders = [Sender(i, target, precision, settings, self.books, gate, notify)
                         for i in range(settings.connections)]
        # Bodies are gzip'd here, ahead of the sender threads, while the request before is in flight.
        self._compressors = ThreadPoolExecutor(max_workers=min(settings.connections, os.cpu_count() or 1),
                                               thread_name_prefix="csv2lp-gzip")
        self._closed = False
        self._reported = False
        self._started = time.perf_counter()
        for sender in self._senders:
            sender.start()

    # -- the numbers ---------------------------------------------------------------------------

    @property
    def lines_sent(self) -> int:
        """Lines handed to the sink (the converter's count of lines written)."""
        return self.books.lines_handed

    @property
    def lines_confirmed(self) -> int:
        return self.books.lines_confirmed

    @property
    def lines_unconfirmed(self) -> int:
        return self.books.lines_unconfirmed

    @property
    def requests_confirmed(self) -> int:
        return self.books.requests_confirmed

    @property
    def retries(self) -> int:
        return self.books.retries

    # -- the LineSink protocol -------------------------------------------------------------------

    def write_lines(self, lines: pa.Array) -> int:
        if self.books.stopping.is_set():
            self._stop()
        with self.books.lock:
            self.books.lines_handed += len(lines)
        self.bytes_written += _nbytes(lines)
        full = [batcher.add(part) for batcher, part in
                zip(self._batchers, split_by_route(lines, self.settings.connections))]
        # Taking turns, so that a block bigger than a queue keeps every connection busy (the
        # queue of the first would otherwise hold back the chunks of the others).
        for turn in itertools.zip_longest(*full):
            for connection, chunk in enumerate(turn):
                if chunk is not None:
                    self._enqueue(connection, chunk)
        return len(lines)

    def close(self) -> None:
        """Send what is left, wait for every answer; raise InfluxWriteError unless all lines were confirmed."""
        if not self._closed:
            self._closed = True
            try:
                for connection, batcher in enumerate(self._batchers):
                    chunk = batcher.flush()
                    if chunk is not None:
                        self._enqueue(connection, chunk)
                for sender in self._senders:
                    self._put(sender, None)
                deadline = time.monotonic() + 2 * self.settings.give_up_after_s + 30
                for sender in self._senders:
                    sender.join(timeout=max(0.0, deadline - time.monotonic()))
            finally:
                self.books.stopping.set()  # a sender still busy (it should not be) sends nothing more
                self._compressors.shutdown(wait=False, cancel_futures=True)
                self.seconds = time.perf_counter() - self._started
        if not self._reported and self.books.lines_confirmed != self.books.lines_handed:
            self._reported = True
            raise InfluxWriteError(self.failure_message())

    def report_lines(self) -> list[str]:
        """What the server confirmed, for the end-of-run summary."""
        books, rate = self.books, ""
        if self.seconds > 0:
            rate = f" ({books.lines_confirmed / self.seconds:,.0f} lines/s)"
        retried = f", {books.retries:,} retried" if books.retries else ""
        connections = self.settings.connections
        via = "/write" if self.target.api is Api.V1 else "/api/v2/write"
        version = self.target.version
        # InfluxDB says its version bare ("1.6.7~rc0", "v2.8.0"); Telegraf's listener says its name.
        server = (f"InfluxDB {version}" if version[:1].isdigit() or version[:2].lower() == "v2" else version) \
            if version else "a server that did not say its version"
        return [f"{books.lines_confirmed:,} lines confirmed by {self.target.where} in {books.requests_confirmed:,} "
                f"request(s){retried} on {connections} connection{'s' if connections > 1 else ''}{rate}",
                f"written through {via} of {server}"]

    def failure_message(self) -> str:
        books = self.books
        counts = f"{books.lines_confirmed:,} lines confirmed, {books.lines_unconfirmed:,} NOT confirmed"
        where = [(books.lines_refused, _in_requests(books.requests_refused, "refused")),
                 (books.lines_given_up, _in_requests(books.requests_given_up, "given up")),
                 (books.lines_not_sent, "not sent after the stop")]
        if pending := books.lines_unconfirmed - sum(n for n, _ in where):
            where.append((pending, "without an answer"))
        detail = ", ".join(f"{n:,} {what}" for n, what in where if n)
        counts += f" ({detail})" if detail else ""
        if books.failure:
            return f"{books.failure} Stopped at the first failed request: {counts}."
        return f"{counts}: the server did not answer them all before csv2lp stopped waiting."

    # -- helpers -----------------------------------------------------------------------------------

    def _enqueue(self, connection: int, chunk: Chunk) -> None:
        if self.books.stopping.is_set():
            self.books.not_sent(chunk.lines)
            return
        body = self._compressors.submit(compress, chunk, gzip=self.settings.gzip)
        if not self._put(self._senders[connection], Job(chunk, body)):
            body.cancel()
            self.books.not_sent(chunk.lines)

    def _put(self, sender: Sender, job: Job | None) -> bool:
        """Queue `job`, waiting while the queue is full; False (not queued) once the run stops."""
        while True:
            try:
                sender.jobs.put(job, timeout=_POLL_S)
                return True
            except queue.Full:
                if not sender.is_alive() or (job is not None and self.books.stopping.is_set()):
                    return False

    def _stop(self) -> None:
        """Wait for the answers in flight (so the counts are final) and raise the failure."""
        self.close()
        raise InfluxWriteError(self.failure_message())  # reached only if close() reported it already


def _in_requests(count: int, what: str) -> str:
    if what == "refused":
        return "in the refused request" if count == 1 else f"in the {count:,} refused requests"
    return f"in the request {what}" if count == 1 else f"in the {count:,} requests {what}"


def _nbytes(lines: pa.Array) -> int:
    offsets = offsets_of(lines)
    return int(offsets[-1] - offsets[0]) if len(lines) else 0


# -- what the CLI calls ---------------------------------------------------------------------


def open_influx_sink(url: str, *, bucket: str, org: str | None, token_file: str | None, create_bucket: bool,
                     batch_lines: int | None, precision: Precision, notify: Notify | None,
                     connections: int | None = None, gzip: bool | None = None) -> InfluxSink:
    """Read the credentials, ask the server which API it speaks, create the bucket if asked,
    and open the sink: everything before the first row.

    `gzip` None compresses unless the server is on this machine (a loopback address): there
    the bytes cost nothing to move and compressing them costs CPU on both sides of a shared
    machine; across a network, bodies ~8x smaller are worth it.
    """
    url = check_url(url)
    credentials = read_credentials(token_file)
    settings = WriteSettings(gzip=not is_loopback(url) if gzip is None else gzip)
    if batch_lines is not None:
        settings = replace(settings, batch_lines=batch_lines)
    if connections is not None:
        settings = replace(settings, connections=connections)
    api, version = detect_api(url, timeout_s=settings.timeout_s)
    if api is Api.V2:
        require_token(credentials)
    target = InfluxTarget(url=url, bucket=bucket, org=org, token=credentials.token, api=api, version=version,
                          username=credentials.username, password=credentials.password)
    if create_bucket and create_bucket_if_missing(target, timeout_s=settings.timeout_s) and notify is not None:
        what = f"database {target.database!r}" if api is Api.V1 else f"bucket {bucket!r} in org {org!r}"
        notify(f"created {what} at {url}")
    return InfluxSink(target, precision=precision, settings=settings, notify=notify)
