"""Lines straight into InfluxDB's v2 write API (`/api/v2/write`) through influxdb-client.

The converter's lines are already line protocol, so nothing here builds `Point`
objects: the Arrow array of lines is cut into chunks of whole lines (`batch_lines`
lines, at most `max_batch_bytes` bytes) and each chunk goes to influxdb-client's
batching `WriteApi` as ONE bytes record, which it sends as one request (batch_size=1),
gzip-compressed, retried with exponential backoff on 429, 5xx and broken connections.

What counts as written is what the server acknowledged: the client's success callback
adds a chunk's lines to `lines_confirmed`, its error callback (after the last retry, or
at once for 4xx) to `lines_failed`. The first failure stops the run, so the rest of a
file is not converted just to be refused too: the chunks already queued get one try
each (no more retries), and the next `write_lines` (or `close`) waits for them and
raises `InfluxWriteError` with the final counts. A batch of lines handed to
`write_lines` is always sent whole, so `lines_sent` equals the converter's count of
lines written, and `close()` raises unless every one of them was confirmed.

The token is never an argument of a command: it comes from $INFLUX_TOKEN or a file
(`read_token`), is kept out of every repr, and is masked in every message built here.

influxdb-client is imported only when a sink is opened, so the rest of csv2lp (and
`csv2lp --help`) works without it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import pyarrow as pa

from ..arrow_buffers import offsets_of
from ..errors import ConverterError
from ..mapping import Precision
from .file import lines_buffer

TOKEN_ENV = "INFLUX_TOKEN"
INSTALL_HINT = "pip install 'csv2lp[influx]' (or pip install influxdb-client)"

Notify = Callable[[str], None]


class InfluxWriteError(ConverterError):
    """The server refused lines, or could not be reached within the retries; or the target is wrong."""


@dataclass(frozen=True)
class InfluxTarget:
    """Where the lines go. `org` is needed by InfluxDB 2; 1.8+ compat APIs, 3.x and Telegraf ignore it."""

    url: str
    bucket: str
    org: str | None = None
    token: str = field(default="", repr=False)


@dataclass(frozen=True)
class WriteSettings:
    """Batching and retries. The defaults ride out a server restart of a few minutes.

    Retry k waits a random time in [retry_interval * base**(k-1), retry_interval * base**k],
    capped at max_retry_delay; a chunk is given up after max_retries retries or
    max_retry_time seconds, whichever comes first.
    """

    batch_lines: int = 5_000
    # InfluxDB 1.x refuses bodies over 25 MB, Telegraf's listener over 32 MiB (before gzip).
    max_batch_bytes: int = 8 << 20
    retry_interval_s: float = 2.0
    exponential_base: float = 2.0
    max_retry_delay_s: float = 60.0
    max_retries: int = 8
    max_retry_time_s: float = 300.0
    timeout_s: float = 30.0
    gzip: bool = True
    # Chunks handed to the client but not yet answered: the converter waits beyond this,
    # so a slow or absent server holds back reading instead of filling memory.
    max_pending_chunks: int = 8

    def __post_init__(self) -> None:
        if self.batch_lines < 1:
            raise ConverterError(f"--batch-lines must be at least 1, got {self.batch_lines}.")

    @property
    def give_up_after_s(self) -> float:
        """An upper bound on how long one chunk can take, all retries included."""
        return self.max_retry_time_s + (self.max_retries + 1) * self.timeout_s + self.max_retry_delay_s


def read_token(token_file: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The token from `token_file` (first line, whitespace stripped), else from $INFLUX_TOKEN."""
    environ = os.environ if environ is None else environ
    if token_file:
        try:
            text = Path(token_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise InfluxWriteError(f"--token-file {token_file}: cannot read it ({exc.strerror}).") from None
        lines = text.strip().splitlines()
        token = lines[0].strip() if lines else ""
        if not token:
            raise InfluxWriteError(f"--token-file {token_file} is empty; put the API token on its first line.")
        return token
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise InfluxWriteError(
            f"no API token: set {TOKEN_ENV}, or give --token-file FILE (a file holding the token). "
            "csv2lp takes no token on the command line, where other users could see it in the process list."
        )
    return token


def line_chunks(lines: pa.Array, *, batch_lines: int, max_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(line count, bytes) of consecutive runs of whole lines, without the last newline.

    The client joins records with a newline, so a chunk must not end in one (that would
    send an empty line). Cut points come from the offsets buffer: no Python per line.
    """
    n = len(lines)
    if n == 0:
        return
    offsets = offsets_of(lines)
    start = 0
    while start < n:
        stop = min(start + batch_lines, n)
        size = int(offsets[stop] - offsets[start])
        if size > max_bytes and stop - start > 1:
            # The largest run of lines from `start` that fits; always at least one line.
            limit = int(offsets[start]) + max_bytes
            stop = max(start + 1, int(np.searchsorted(offsets[start:stop + 1], limit, side="right")) - 1 + start)
        chunk = lines_buffer(lines.slice(start, stop - start))
        yield stop - start, chunk.slice(0, chunk.size - 1).to_pybytes()
        start = stop


class InfluxSink:
    """A LineSink that writes to `/api/v2/write`; see the module docstring for what it guarantees."""

    def __init__(self, target: InfluxTarget, *, precision: Precision = Precision.NS,
                 settings: WriteSettings = WriteSettings(), notify: Notify | None = None) -> None:
        self.target = target
        self.precision = precision
        self.settings = settings
        self._notify = notify
        self.bytes_written = 0  # bytes handed to the client (before gzip)
        self.lines_sent = 0
        self.lines_confirmed = 0
        self.lines_failed = 0
        self.requests_confirmed = 0
        self.requests_abandoned = 0  # queued when the run stopped; tried once, not retried
        self.retries = 0
        self.seconds = 0.0
        self._failures: list[str] = []
        self._fail_status: int | None = None
        self._pending = 0
        self._cond = threading.Condition()
        self._closed = False
        self._stopping = False  # the run was stopped early because of a failed write
        self._reported = False
        self._started = time.perf_counter()
        self._client, self._write_api = self._open()

    # -- the LineSink protocol -----------------------------------------------------------

    def write_lines(self, lines: pa.Array) -> int:
        if self._failures:
            self._stop()
        for count, body in line_chunks(lines, batch_lines=self.settings.batch_lines,
                                       max_bytes=self.settings.max_batch_bytes):
            self._wait_for_room()
            with self._cond:
                self._pending += 1
            self.lines_sent += count
            self.bytes_written += len(body) + 1
            self._write_api.write(bucket=self.target.bucket, org=self.target.org, record=body,
                                  write_precision=self.precision.value)
        return len(lines)

    def close(self) -> None:
        """Wait for every chunk's answer; raise InfluxWriteError unless all lines were confirmed."""
        if not self._closed:
            self._closed = True
            try:
                self._write_api.close()  # waits for the queue, retries included (max_close_wait)
            finally:
                self._client.close()
                self.seconds = time.perf_counter() - self._started
        if not self._reported and self.lines_confirmed != self.lines_sent:
            self._reported = True
            raise InfluxWriteError(self._failure_message())

    def report_lines(self) -> list[str]:
        """What the server confirmed, for the end-of-run summary."""
        rate = f" ({self.lines_confirmed / self.seconds:,.0f} lines/s)" if self.seconds > 0 else ""
        retried = f", {self.retries:,} retried" if self.retries else ""
        return [f"{self.lines_confirmed:,} lines confirmed by {self.target.url} (bucket {self.target.bucket}) "
                f"in {self.requests_confirmed:,} request(s){retried}{rate}"]

    # -- setup ---------------------------------------------------------------------------

    def _open(self) -> tuple[Any, Any]:
        influxdb_client = import_client()
        from influxdb_client.client.write_api import WriteOptions, WriteType
        from reactivex.scheduler import ThreadPoolScheduler

        _quiet_client_loggers()
        settings = self.settings
        client = influxdb_client.InfluxDBClient(
            url=self.target.url, token=self.target.token, org=self.target.org,
            timeout=int(settings.timeout_s * 1000), enable_gzip=settings.gzip,
        )
        options = WriteOptions(
            write_type=WriteType.batching,
            batch_size=1,  # one record is already a chunk of many lines: one record, one request
            flush_interval=1_000,
            retry_interval=int(settings.retry_interval_s * 1000),
            exponential_base=settings.exponential_base,
            max_retry_delay=int(settings.max_retry_delay_s * 1000),
            max_retries=settings.max_retries,
            max_retry_time=int(settings.max_retry_time_s * 1000),
            # The chunk that fails first may take all its retries; once it has failed,
            # the chunks queued behind it get one try each.
            max_close_wait=int((settings.give_up_after_s + settings.max_pending_chunks * settings.timeout_s) * 1000),
            # One request at a time, in file order: when a point appears twice in the input,
            # the later line must win, as it does with `influx write` or a file.
            write_scheduler=ThreadPoolScheduler(max_workers=1),
        )
        write_api = client.write_api(write_options=options, success_callback=self._on_success,
                                     error_callback=self._on_error, retry_callback=self._on_retry)
        return client, write_api

    # -- client callbacks (on the client's writer thread) ----------------------------------

    def _on_success(self, _conf: tuple, data: bytes) -> None:
        with self._cond:
            self.lines_confirmed += _count_lines(data)
            self.requests_confirmed += 1
            self._pending -= 1
            self._cond.notify_all()

    def _on_error(self, _conf: tuple, data: bytes, exception: Exception) -> None:
        with self._cond:
            self.lines_failed += _count_lines(data)
            if isinstance(exception, _GaveUp):
                self.requests_abandoned += 1
            else:
                status, text = describe_exception(exception)
                if not self._failures:
                    self._fail_status = status
                self._failures.append(self._mask(text))
            self._pending -= 1
            self._cond.notify_all()

    def _on_retry(self, _conf: tuple, _data: bytes, exception: Exception) -> None:
        if self._failures:
            # The run is stopping: a queued chunk gets its one try, not minutes of retries.
            raise _GaveUp()
        self.retries += 1
        if self._notify is not None:
            _, text = describe_exception(exception)
            self._notify(self._mask(f"write to {self.target.url} failed ({text}); retrying "
                                    f"(retry {self.retries}, up to {self.settings.max_retries} per request)"))

    # -- helpers ---------------------------------------------------------------------------

    def _wait_for_room(self) -> None:
        """Block while too many chunks are unanswered (the server sets the pace)."""
        deadline = time.monotonic() + self.settings.give_up_after_s
        with self._cond:
            while self._pending >= self.settings.max_pending_chunks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise InfluxWriteError(
                        f"{self.target.url}: no answer to {self._pending} write request(s) within "
                        f"{self.settings.give_up_after_s:.0f} s; {self.lines_confirmed:,} of {self.lines_sent:,} "
                        "lines confirmed so far."
                    )
                self._cond.wait(timeout=min(remaining, 1.0))

    def _stop(self) -> None:
        """Wait for what is queued (so the counts are final) and raise the failure."""
        self._stopping = True
        self.close()
        raise InfluxWriteError(self._failure_message())  # not reached: close() raised

    def _failure_message(self) -> str:
        unconfirmed = self.lines_sent - self.lines_confirmed
        where = f"{self.target.url} (bucket {self.target.bucket})"
        counts = (f"{unconfirmed:,} of the {self.lines_sent:,} lines written were NOT confirmed by {where} "
                  f"({self.lines_confirmed:,} were)")
        if self._failures:
            first = self._failures[0]
            more = f" ({len(self._failures)} requests failed)" if len(self._failures) > 1 else ""
            stopped = " Stopped converting at the first failure." if self._stopping else ""
            return f"{counts}. First error{more}: {first}.{_hint(self._fail_status, self.target)}{stopped}"
        return f"{counts}: the client closed before the server answered them all."

    def _mask(self, text: str) -> str:
        token = self.target.token
        return text.replace(token, "***") if token else text


class _GaveUp(Exception):
    """Raised from the retry callback to end a queued chunk's retries once the run is stopping."""

    def __str__(self) -> str:
        return "not retried: an earlier request failed"


def _count_lines(data: bytes) -> int:
    # A chunk carries no trailing newline and line protocol no newline inside a line.
    return data.count(b"\n") + 1 if data else 0


def describe_exception(exception: BaseException) -> tuple[int | None, str]:
    """(HTTP status or None, one readable sentence) for whatever the client raised."""
    status = getattr(exception, "status", None)
    response = getattr(exception, "response", None)
    if status is None and response is not None:
        status = getattr(response, "status", None)
    if status is not None:
        reason = getattr(exception, "reason", None) or getattr(response, "reason", "") or ""
        message = getattr(exception, "message", None)
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        detail = str(message).strip() if message else ""
        text = f"HTTP {status} {reason}".strip()
        if detail and detail.lower() != str(reason).lower():
            text += f": {detail}"
        return int(status), text
    reason = getattr(exception, "reason", None)  # urllib3's MaxRetryError names its cause
    if reason is not None and reason is not exception:
        return None, f"gave up after the retries: {_plain(reason)}"
    return None, _plain(exception)


def _plain(exception: object) -> str:
    text = str(exception).strip() or type(exception).__name__
    # urllib3 wraps "Connection refused" in object reprs; keep the part a person reads.
    if "Connection refused" in text:
        return "connection refused"
    return text


def _hint(status: int | None, target: InfluxTarget) -> str:
    if status == 401:
        return f" The token was refused: check ${TOKEN_ENV} or --token-file."
    if status == 403:
        return f" The token may not write to bucket {target.bucket!r}."
    if status == 404:
        return " Check --bucket and --org (or add --create-bucket on InfluxDB 2)."
    if status == 413:
        return " The request was too large: lower --batch-lines."
    if status is None:
        return f" Is the server at {target.url} running and reachable?"
    return ""


def import_client():
    try:
        import influxdb_client
    except ImportError:
        raise ConverterError(f"--influx-url needs the influxdb-client package: {INSTALL_HINT}.") from None
    return influxdb_client


def _quiet_client_loggers() -> None:
    # influxdb-client logs every failed batch at ERROR (with the response headers) and
    # urllib3 every retry at WARNING; the client also calls logging.debug() on the root
    # logger, which installs a stderr handler there. The sink reports the same events
    # itself, once and readably (notify, InfluxWriteError), so these two loggers are
    # cut off from the root logger. An application that wants them can add handlers.
    for name in ("influxdb_client", "urllib3.connectionpool"):
        logger = logging.getLogger(name)
        logger.propagate = False
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())


# -- buckets ------------------------------------------------------------------------------


def create_bucket_if_missing(target: InfluxTarget, *, timeout_s: float = 30.0) -> bool:
    """Create `target.bucket` in `target.org` through /api/v2/buckets; True if it was created.

    Only InfluxDB 2 (and Cloud 2) has that API. InfluxDB 1.x, 3.x and Telegraf's
    influxdb_v2_listener take /api/v2/write but answer 404 there: say so, plainly.
    """
    influxdb_client = import_client()
    from influxdb_client.rest import ApiException

    _quiet_client_loggers()
    if not target.org:
        raise InfluxWriteError("--create-bucket needs --org (the organization the bucket belongs to).")
    where = f"{target.url}/api/v2/buckets"
    with influxdb_client.InfluxDBClient(url=target.url, token=target.token, org=target.org,
                                        timeout=int(timeout_s * 1000)) as client:
        buckets = client.buckets_api()
        try:
            found = buckets.find_buckets(name=target.bucket, org=target.org).buckets or []
            if found:
                return False
            buckets.create_bucket(bucket_name=target.bucket, org=target.org)
            return True
        except ApiException as exc:
            status, text = describe_exception(exc)
            if status == 404 and not _is_influxdb2_error(exc):
                raise InfluxWriteError(
                    f"--create-bucket: the server at {target.url} has no buckets API ({where} answered "
                    f"404 Not Found). Only InfluxDB 2 has one; InfluxDB 1.x and 3.x and Telegraf's "
                    f"influxdb_v2_listener accept writes on /api/v2/write but cannot create buckets. "
                    f"Create the bucket or database {target.bucket!r} there yourself "
                    f"(1.x: CREATE DATABASE; 3.x: influxdb3 create database), then run without --create-bucket."
                ) from None
            raise InfluxWriteError(
                _mask(f"--create-bucket: {where} answered {text}.{_hint(status, target)}", target.token)
            ) from None
        except Exception as exc:  # connection errors come from urllib3, not the client
            raise InfluxWriteError(
                _mask(f"--create-bucket: cannot reach {where}: {_plain(exc)}.", target.token)
            ) from None


def _is_influxdb2_error(exc: Exception) -> bool:
    """InfluxDB 2 answers 404 with a JSON body (e.g. an unknown org); a missing route answers plain text."""
    body = getattr(exc, "body", None) or b""
    return body.lstrip()[:1] == b"{" if isinstance(body, bytes) else str(body).lstrip()[:1] == "{"


def _mask(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


# -- what the CLI calls ---------------------------------------------------------------------


def open_influx_sink(url: str, *, bucket: str, org: str | None, token_file: str | None, create_bucket: bool,
                     batch_lines: int | None, precision: Precision, notify: Notify | None) -> InfluxSink:
    """Read the token, create the bucket if asked, and open the sink: everything before the first row."""
    if not url.startswith(("http://", "https://")):
        raise InfluxWriteError(f"--influx-url {url!r}: give the server's base URL, e.g. http://localhost:8086.")
    target = InfluxTarget(url=url.rstrip("/"), bucket=bucket, org=org, token=read_token(token_file))
    settings = WriteSettings() if batch_lines is None else WriteSettings(batch_lines=batch_lines)
    if create_bucket and create_bucket_if_missing(target, timeout_s=settings.timeout_s) and notify is not None:
        notify(f"created bucket {bucket!r} in org {org!r} at {target.url}")
    return InfluxSink(target, precision=precision, settings=settings, notify=notify)
