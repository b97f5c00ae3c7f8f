"""The LineSink that writes to Kafka: blocks of lines in, acknowledged messages out, exact books."""

from __future__ import annotations

import functools
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from ...arrow_buffers import offsets_of
from .client import ClientErrors, Topic, load, probe, producer_config
from .messages import LineTooLong, message_views, series_of_strings
from .settings import ClientConfig, KafkaSettings, KafkaWriteError, read_client_config

Notify = Callable[[str], None]
# A block for the producer thread: its lines, and (code, key length) of each line's series when known.
Block = tuple[pa.Array, "tuple[np.ndarray, np.ndarray] | None"]

# Blocks handed over but not cut into messages yet: the converter runs this far ahead of the producer.
_BLOCKS_AHEAD = 2
# How often a waiting thread looks whether the run was stopped.
_POLL_S = 0.2
# Nothing acknowledged for this long while lines wait: say so, then again every _REMIND_S.
_NOTICE_AFTER_S = 5.0
_REMIND_S = 30.0
# After the stop, how long the answers to messages already in flight are waited for.
_IN_FLIGHT_WAIT_S = 30.0


@dataclass
class Books:
    """Where every line handed to the sink is. Delivery callbacks update it on the producer thread."""

    lines_handed: int = 0
    lines_acknowledged: int = 0
    messages_acknowledged: int = 0
    lines_failed: int = 0  # in messages the broker refused or did not acknowledge in time
    messages_failed: int = 0
    lines_not_sent: int = 0  # handed over, but not produced (or purged from the queue) after the stop
    partitions: set[int] = field(default_factory=set)
    failure: str | None = None  # the first failure, in words
    last_ack: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    stopping: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def lines_unacknowledged(self) -> int:
        return self.lines_handed - self.lines_acknowledged

    def acknowledged(self, lines: int, partition: int) -> None:
        with self.lock:
            self.lines_acknowledged += lines
            self.messages_acknowledged += 1
            self.partitions.add(partition)
            self.last_ack = time.monotonic()

    def failed(self, lines: int, text: str) -> None:
        with self.lock:
            self.lines_failed += lines
            self.messages_failed += 1
        self.fail(text)

    def fail(self, text: str) -> None:
        with self.lock:
            if self.failure is None:
                self.failure = text
        self.stopping.set()

    def not_sent(self, lines: int) -> None:
        with self.lock:
            self.lines_not_sent += lines


class KafkaSink:
    """Lines to a Kafka topic as messages of one series each (messages.py), through one idempotent producer.

    `write_lines` returns once the block is queued for the producer thread; it blocks while
    the queue (two blocks, then librdkafka's bounded queue) is full, which holds back the
    reading. After the first failed message it raises KafkaWriteError with the final counts;
    so does `close()` unless every line was acknowledged.
    """

    def __init__(self, settings: KafkaSettings, topic: Topic, client: ClientConfig, *,
                 notify: Notify | None = None) -> None:
        kafka = load()
        self.settings = settings
        self.topic = topic
        self.client = client
        self.notify = notify
        self.books = Books()
        self.bytes_written = 0  # bytes of line protocol handed over (before compression)
        self.seconds = 0.0
        self._kafka = kafka
        self._errors = ClientErrors(client)
        try:
            self._producer = kafka.Producer(producer_config(settings, client, self._errors, topic))
        except kafka.KafkaException as exc:
            raise KafkaWriteError(f"librdkafka refused the producer's settings: {client.mask(str(exc))}.") from None
        self._blocks: queue.Queue[Block | None] = queue.Queue(maxsize=_BLOCKS_AHEAD)
        self._thread = threading.Thread(target=self._run, name="csv2lp-kafka", daemon=True)
        self._closed = False
        self._reported = False
        self._started = time.perf_counter()
        self._waiting_since: float | None = None  # when the current silence of the broker was first reported
        self._reminded = 0.0
        self._thread.start()

    # -- the numbers -------------------------------------------------------------------------------

    @property
    def lines_sent(self) -> int:
        return self.books.lines_handed

    @property
    def lines_confirmed(self) -> int:
        """Lines in messages the broker acknowledged (the summary's "written")."""
        return self.books.lines_acknowledged

    @property
    def lines_unconfirmed(self) -> int:
        return self.books.lines_unacknowledged

    # -- the LineSink protocol ---------------------------------------------------------------------

    def write_lines(self, lines: pa.Array) -> int:
        return self._hand_over(lines, None)

    def write_series_lines(self, lines: pa.Array, series_codes: np.ndarray, series_strings: pa.Array) -> int:
        """write_lines with each line's series from the encoder (lines[i] starts with
        series_strings[series_codes[i]]): the producer thread need not find them in the bytes."""
        return self._hand_over(lines, series_of_strings(series_codes, series_strings))

    def _hand_over(self, lines: pa.Array, series: tuple[np.ndarray, np.ndarray] | None) -> int:
        if self.books.stopping.is_set():
            self._stop()
        with self.books.lock:
            self.books.lines_handed += len(lines)
        offsets = offsets_of(lines)
        self.bytes_written += int(offsets[-1] - offsets[0]) if len(lines) else 0
        if not self._put((lines, series)):
            # Not taken after all: the converter counts the block as not written, so the books must not hold it.
            with self.books.lock:
                self.books.lines_handed -= len(lines)
            self._stop()
        return len(lines)

    def close(self) -> None:
        """Produce what is left and wait for every acknowledgement (each message waits at most
        --kafka-timeout); raise KafkaWriteError unless every line was acknowledged."""
        if not self._closed:
            self._closed = True
            try:
                self._put(None, even_when_stopping=True)
                while self._thread.is_alive():
                    self._thread.join(timeout=_POLL_S)
            finally:
                self.seconds = time.perf_counter() - self._started
        if not self._reported and self.books.lines_acknowledged != self.books.lines_handed:
            self._reported = True
            raise KafkaWriteError(self.failure_message())

    def report_lines(self) -> list[str]:
        """What the broker acknowledged, for the end-of-run summary."""
        books, topic = self.books, self.topic
        rate = f" ({books.lines_acknowledged / self.seconds:,.0f} lines/s)" if self.seconds > 0 else ""
        return [f"{books.lines_acknowledged:,} lines acknowledged by Kafka in {books.messages_acknowledged:,} "
                f"message(s) to topic {topic.name!r} ({len(books.partitions)} of {topic.partitions} "
                f"partition(s)){rate}",
                f"messages of one series each, up to {self.settings.message_lines:,} lines and "
                f"{topic.message_bytes:,} bytes, {self.client.compression}, idempotent, acks=all"]

    def failure_message(self) -> str:
        books = self.books
        counts = f"{books.lines_acknowledged:,} lines acknowledged, {books.lines_unacknowledged:,} NOT acknowledged"
        parts = [(books.lines_failed, f"in {books.messages_failed:,} failed message(s)"),
                 (books.lines_not_sent, "not sent after the stop")]
        if pending := books.lines_unacknowledged - books.lines_failed - books.lines_not_sent:
            parts.append((pending, "without an answer"))
        detail = ", ".join(f"{n:,} {what}" for n, what in parts if n)
        counts += f" ({detail})" if detail else ""
        if books.failure:
            return f"{books.failure} Stopped: {counts}."
        return f"{counts}: Kafka did not answer for them all before csv2lp stopped waiting."

    # -- the producer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while (block := self._blocks.get()) is not None:
                lines, series = block
                if self.books.stopping.is_set():
                    self.books.not_sent(len(lines))
                    continue
                self._produce_block(lines, series)
            self._drain()
        except Exception as exc:  # pragma: no cover - a bug: said once, counted, never a traceback
            self.books.fail(f"Kafka: producing failed inside csv2lp ({type(exc).__name__}: "
                            f"{self.client.mask(str(exc))}); please report it.")
            self._purge()
        finally:
            self._drop_unproduced()

    def _produce_block(self, lines: pa.Array, series: tuple[np.ndarray, np.ndarray] | None) -> None:
        produced = 0
        try:
            for key, value, count in message_views(lines, max_lines=self.settings.message_lines,
                                                   max_bytes=self.topic.message_bytes, series=series):
                if not self._produce(key, value, count):
                    break
                produced += count
        except LineTooLong as exc:
            limit = (f"topic {self.topic.name!r} takes {self.topic.max_message_bytes:,} bytes (max.message.bytes)"
                     if self.topic.max_message_bytes else "the broker's limit is not known")
            self.books.fail(f"Kafka: {exc} ({limit}; --kafka-message-bytes {self.topic.message_bytes:,}): raise "
                            f"both, or keep string fields shorter (--max-string-bytes).")
        if produced < len(lines):
            self.books.not_sent(len(lines) - produced)

    def _produce(self, key: bytes, value: pa.Buffer, lines: int) -> bool:
        """Queue one message, waiting while librdkafka's queue is full; False once the run stops."""
        callback = functools.partial(self._delivered, lines)
        while not self.books.stopping.is_set():
            try:
                self._producer.produce(self.topic.name, value, key, on_delivery=callback)
                self._producer.poll(0)
                return True
            except BufferError:  # the queue is full: the broker is slow or away
                self._wait()
            except self._kafka.KafkaException as exc:
                self.books.fail(f"Kafka: csv2lp could not queue a message: {self._describe(exc.args[0])}.")
                return False
        return False

    def _delivered(self, lines: int, error: Any, message: Any) -> None:
        if error is None:
            self.books.acknowledged(lines, message.partition())
            if self._waiting_since is not None:
                self._say(f"Kafka acknowledges again after {time.monotonic() - self._waiting_since:.0f} s; going on "
                          f"({self.books.lines_unacknowledged:,} lines not acknowledged yet)")
                self._waiting_since = None
            return
        code = error.code()
        if code in (self._kafka.KafkaError._PURGE_QUEUE, self._kafka.KafkaError._PURGE_INFLIGHT):
            self.books.not_sent(lines)
            return
        self.books.failed(lines, f"Kafka: {self._describe(error, nbytes=len(message.value() or b''))}.")

    def _wait(self) -> None:
        """One wait for the broker: serve callbacks, say so when it has been silent a while, end on a fatal error."""
        self._producer.poll(_POLL_S)
        if self._errors.fatal is not None:
            self.books.fail(f"Kafka: the producer cannot go on: {self._errors.fatal}.")
            return
        now = time.monotonic()
        silent = now - self.books.last_ack
        if silent < _NOTICE_AFTER_S or self.books.lines_unacknowledged == 0:
            return
        if self._waiting_since is None:
            self._waiting_since = self._reminded = now - silent
            last = f" (last: {self._errors.last})" if self._errors.last else ""
            limit = (f"each message up to --kafka-timeout {self.settings.timeout_s:g} s"
                     if self.settings.timeout_s else "without a limit (--kafka-timeout 0)")
            self._say(f"warning: Kafka has acknowledged nothing for {silent:.0f} s{last}; waiting for the broker, "
                      f"{limit}; {self.books.lines_unacknowledged:,} lines not acknowledged yet, reading paused "
                      f"(at most {self.settings.queue_kbytes // 1024} MB wait in memory)")
        elif now - self._reminded >= _REMIND_S:
            self._reminded = now
            self._say(f"warning: still waiting for Kafka after {now - self._waiting_since:.0f} s; "
                      f"{self.books.lines_unacknowledged:,} lines not acknowledged yet")

    def _drain(self) -> None:
        """Wait for the answer to every message produced; after a stop, only for those already in flight."""
        purged = False
        stopped_at: float | None = None
        while len(self._producer) > 0:
            if self.books.stopping.is_set():
                if not purged:
                    self._purge()
                    purged, stopped_at = True, time.monotonic()
                elif stopped_at is not None and time.monotonic() - stopped_at > _IN_FLIGHT_WAIT_S:
                    return  # counted "without an answer"
            self._wait()
        self._producer.poll(0)

    def _purge(self) -> None:
        try:
            self._producer.purge(in_queue=True, in_flight=False)
            self._producer.poll(0)  # the purged messages' callbacks: counted as not sent
        except Exception:  # noqa: BLE001 - a producer that cannot purge leaves them "without an answer"
            pass

    def _drop_unproduced(self) -> None:
        """Blocks still queued when the thread ends were never produced."""
        while True:
            try:
                block = self._blocks.get_nowait()
            except queue.Empty:
                return
            if block is not None:
                self.books.not_sent(len(block[0]))

    # -- helpers -------------------------------------------------------------------------------------

    def _put(self, item: Block | None, *, even_when_stopping: bool = False) -> bool:
        """Queue `item` for the producer thread, waiting while the queue is full; False once the run stops."""
        while True:
            try:
                self._blocks.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                if not self._thread.is_alive() or (self.books.stopping.is_set() and not even_when_stopping):
                    return False

    def _stop(self) -> None:
        """Wait for the answers in flight (so the counts are final) and raise the failure."""
        self.close()
        raise KafkaWriteError(self.failure_message())  # reached only if close() reported it already

    def _say(self, text: str) -> None:
        if self.notify is not None:
            self.notify(self.client.mask(text))

    def _describe(self, error: Any, *, nbytes: int | None = None) -> str:
        kafka_error = self._kafka.KafkaError
        code, text = error.code(), self.client.mask(error.str())
        if code == kafka_error._MSG_TIMED_OUT:
            last = f"; the last error: {self._errors.last}" if self._errors.last else ""
            return (f"a message was not acknowledged within --kafka-timeout {self.settings.timeout_s:g} s{last}; "
                    f"give a longer --kafka-timeout (0: no limit) to wait longer for the broker")
        if code == kafka_error.MSG_SIZE_TOO_LARGE:
            size = f" of {nbytes:,} bytes" if nbytes else ""
            return (f"the broker refused a message{size} as too large for topic {self.topic.name!r} (its "
                    f"max.message.bytes is lower): give a smaller --kafka-message-bytes")
        if code == kafka_error.TOPIC_AUTHORIZATION_FAILED:
            return f"the broker does not let csv2lp write to topic {self.topic.name!r} (TOPIC_AUTHORIZATION_FAILED)"
        if code == kafka_error.CLUSTER_AUTHORIZATION_FAILED:
            return ("the broker does not let csv2lp write idempotently (CLUSTER_AUTHORIZATION_FAILED): ask for "
                    "IDEMPOTENT_WRITE on the cluster")
        if code in (kafka_error.UNKNOWN_TOPIC_OR_PART, kafka_error._UNKNOWN_TOPIC):
            return f"topic {self.topic.name!r} is gone (deleted while csv2lp was writing to it)"
        return f"{text} ({error.name()})"


def open_kafka_sink(*, brokers: str, topic: str, config_file: str | None = None, timeout_s: float | None = None,
                    message_lines: int | None = None, message_bytes: int | None = None,
                    notify: Notify | None = None) -> KafkaSink:
    """Read the client settings, reach the cluster, check the topic and its limits, and open the sink:
    everything before the first row. Each failure is a KafkaWriteError of one line."""
    settings = KafkaSettings(brokers=brokers, topic=topic, message_bytes=message_bytes,
                             **({"timeout_s": timeout_s} if timeout_s is not None else {}),
                             **({"message_lines": message_lines} if message_lines is not None else {}))
    load()
    client = read_client_config(config_file)
    found = probe(settings, client, notify)
    return KafkaSink(settings, found, client, notify=notify)
