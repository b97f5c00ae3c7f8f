"""csv2lp's Kafka sink under test: run `csv2lp --kafka-...` as a process, feed it slowly, read the topic back.

- `run_csv2lp` starts this checkout's csv2lp (`python -m converter`) as a child, with stdin from
  a file or a `PacedInput`, and returns its exit status, stderr and run time.
- `PacedInput` writes a CSV into the child's stdin in chunks at a set pace, so that a broker
  can be stopped while csv2lp is still producing (a whole file converts in about a second).
- `read_topic` reads every record of a topic back (a new consumer group, from the start).
- `reference_lines` is what `csv2lp convert` writes for the same file: per series, in file
  order, what the topic must hold; `assert_exact` checks a topic's records against it.
- `kafka_args` are the options of a Movebank run into a topic; `assert_one_line_error` checks
  a run that failed as csv2lp promises: exit status 1, one error line, no traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .data import REPO
from .kafka import KafkaBroker

RUN_TIMEOUT_S = 300.0
READ_IDLE_S = 3.0


def csv2lp_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = {key: value for key, value in os.environ.items() if not key.startswith("KAFKA_")}
    return {**env, "PYTHONPATH": path, **(extra or {})}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("csv2lp: error:")]

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("csv2lp: warning:")]


def start_csv2lp(args: list[str], *, env: dict[str, str] | None = None, stdin: int | IO | None = None,
                 cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "converter", *args], stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=csv2lp_env(env), cwd=cwd or REPO, text=True)


def hand_over_stdin(process: subprocess.Popen) -> IO:
    """The child's stdin pipe, taken from `process` for a PacedInput thread: communicate() would
    otherwise flush and close it too, racing the thread (ValueError: I/O operation on closed file)."""
    pipe, process.stdin = process.stdin, None
    return pipe


def start_paced(args: list[str], paced: PacedInput) -> subprocess.Popen:
    """csv2lp reading `-` (stdin) with `args`, fed by `paced` on its thread."""
    process = start_csv2lp(["-", *args], stdin=subprocess.PIPE)
    paced.start(hand_over_stdin(process))
    return process


def finish(process: subprocess.Popen, paced: PacedInput | None = None, *, timeout: float = RUN_TIMEOUT_S) -> Run:
    """Wait (bounded) for a csv2lp started with start_csv2lp/start_paced; kill it if it outlives `timeout`."""
    began = time.monotonic()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(f"csv2lp did not finish in {timeout:.0f} s; stderr:\n{stderr[-3000:]}") from None
    finally:
        if paced is not None:
            paced.join()
    return Run(process.returncode, stdout, stderr, time.monotonic() - began)


ACKED = re.compile(r"^([\d,]+) lines acknowledged by Kafka in ([\d,]+) message", re.M)


def acknowledged_lines(stderr: str) -> int | None:
    """The lines csv2lp's end summary says Kafka acknowledged, None without that line."""
    match = ACKED.search(stderr)
    return int(match.group(1).replace(",", "")) if match else None


def run_csv2lp(args: list[str], *, env: dict[str, str] | None = None, stdin: PacedInput | None = None,
               timeout: float = RUN_TIMEOUT_S, cwd: Path | None = None) -> Run:
    """csv2lp with `args` to the end (bounded by `timeout`), fed by `stdin` if given."""
    process = start_csv2lp(args, env=env, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, cwd=cwd)
    if stdin is not None:
        stdin.start(hand_over_stdin(process))
    return finish(process, stdin, timeout=timeout)


class PacedInput:
    """The bytes of `path` written to a pipe in `chunk`-byte pieces, `every` seconds apart, on a thread.

    `written` counts the bytes the pipe took so far; `paused` (an Event) holds the writer while set.
    """

    def __init__(self, path: Path, *, chunk: int = 256 * 1024, every: float = 0.1) -> None:
        self.data = path.read_bytes()
        self.chunk = chunk
        self.every = every
        self.written = 0
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def fraction(self) -> float:
        return self.written / len(self.data)

    def start(self, pipe: IO[bytes] | IO[str]) -> None:
        target = pipe.buffer if hasattr(pipe, "buffer") else pipe
        self._thread = threading.Thread(target=self._write, args=(target, pipe), daemon=True)
        self._thread.start()

    def _write(self, target, pipe) -> None:
        try:
            for start in range(0, len(self.data), self.chunk):
                target.write(self.data[start:start + self.chunk])
                target.flush()
                self.written = min(len(self.data), start + self.chunk)
                time.sleep(self.every)
        except (BrokenPipeError, OSError) as error:
            self.error = error
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    def join(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_for(self, fraction: float, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.fraction < fraction:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.fraction:.0%} of the input written after {timeout:.0f} s")
            time.sleep(0.05)


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes
    value: bytes
    timestamp_type: int
    timestamp_ms: int

    @property
    def lines(self) -> list[bytes]:
        return self.value.splitlines(keepends=True)


def read_topic(broker: KafkaBroker, topic: str, *, expected_lines: int | None = None,
               timeout: float = 60.0) -> list[Record]:
    """Every record of `topic`, in partition order then offset. Stops once `expected_lines` lines
    came (and READ_IDLE_S passed without more), or when nothing came for READ_IDLE_S after a first record."""
    from confluent_kafka import Consumer, KafkaError

    consumer = Consumer(broker.client_config({"group.id": f"read-{uuid.uuid4().hex[:8]}",
                                              "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                              "enable.partition.eof": False}))
    consumer.subscribe([topic])
    records: list[Record] = []
    lines = 0
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                done = expected_lines is None or lines >= expected_lines
                if records and done and time.monotonic() - last > READ_IDLE_S:
                    break
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"consumer error: {message.error()}")
            kind, stamp = message.timestamp()
            records.append(Record(message.partition(), message.offset(), message.key(), message.value(), kind, stamp))
            lines += message.value().count(b"\n")
            last = time.monotonic()
    finally:
        consumer.close()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def series_key(line: bytes) -> bytes:
    """The line's series as the producer keys it (tested against the vectorized one in test_kafka_messages)."""
    i = 0
    while True:
        i = line.index(b" ", i)
        if line[i - 1:i] != b"\\":
            return line[:i]
        i += 1


def lines_per_series(records: list[Record]) -> dict[bytes, list[bytes]]:
    """{series: its lines in the order the topic holds them} (one partition per series, in offset order)."""
    series: dict[bytes, list[bytes]] = defaultdict(list)
    for record in records:
        for line in record.lines:
            series[series_key(line)].append(line)
    return dict(series)


def reference_lines(csv_path: Path, out: Path, *args: str) -> dict[bytes, list[bytes]]:
    """What `csv2lp convert --preset movebank` writes for `csv_path`, per series in file order."""
    done = subprocess.run([sys.executable, "-m", "converter", "convert", str(csv_path), "--preset", "movebank",
                           "-o", str(out), "-q", *args], env=csv2lp_env(), cwd=REPO, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    series: dict[bytes, list[bytes]] = defaultdict(list)
    with open(out, "rb") as lines:
        for line in lines:
            series[series_key(line)].append(line)
    return dict(series)


def kafka_args(broker: KafkaBroker | str, topic: str, *extra: str) -> list[str]:
    brokers = broker if isinstance(broker, str) else broker.bootstrap_servers
    return ["--preset", "movebank", "--kafka-brokers", brokers, "--kafka-topic", topic, *extra]


def assert_one_line_error(run: Run, *fragments: str) -> str:
    """Exit status 1, no traceback, exactly one error line holding every fragment; that line."""
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert len(run.errors) == 1, run.stderr
    for fragment in fragments:
        assert fragment in run.errors[0], run.errors[0]
    return run.errors[0]


def assert_exact(records, reference: dict[bytes, list[bytes]]) -> None:
    """The topic holds every reference line once, each series in file order, keyed and in one partition."""
    got = lines_per_series(records)
    assert sorted(got) == sorted(reference)
    for series, lines in reference.items():
        assert got[series] == lines, f"series {series[:60]!r}: {len(got[series])} lines, {len(lines)} expected"
    partitions: dict[bytes, set[int]] = {}
    for record in records:
        assert {series_key(line) for line in record.lines} == {record.key}  # the key is the message's one series
        partitions.setdefault(record.key, set()).add(record.partition)
    assert all(len(p) == 1 for p in partitions.values()), partitions
