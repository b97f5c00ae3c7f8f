"""The consumer side of the Kafka tests: Telegrafs running telegraf/kafka-consumer.conf in one group.

- `start_consumers` runs the shipped file in several Telegrafs (only the KAFKA_* and INFLUX_*
  variables set, `shipped_env`); `with_internal_metrics` adds Telegraf's own numbers
  ([[inputs.internal]] -> [[outputs.prometheus_client]] on a free loopback port) for tests
  that must show it dropped nothing; `internal_write` reads them back.
- `group_assignment`, `both_hold_partitions` and `lag` ask the broker about the group
  (which member holds which partition, how far each partition's committed offset is behind).
- `expected_counts` is what InfluxDB must count per series for a file of `csv2lp convert`'s
  lines, and `assert_exact_in_influxdb` waits for exactly that; a count still short then is
  re-checked after an influxd restart before it is called a loss (InfluxDB 2.8.0 counts
  acknowledged points short for a while, REFERENCE.md).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

from .csv2lp_kafka import csv2lp_env
from .data import REPO
from .influxdb import free_loopback_port
from .influxdb2 import InfluxDB2Server
from .kafka import KafkaBroker
from .movebank_gen import generate
from .server_process import RECOUNT_TIMEOUT_S
from .telegraf import MAX_LIFETIME_S, StartTelegraf, TelegrafProcess, internal_write, wait_until

SHIPPED_CONSUMER = REPO / "telegraf" / "kafka-consumer.conf"
PARTITIONS = 4
MEASUREMENT = "movebank"
GROUP_TIMEOUT_S = 60.0  # both Telegrafs connected and holding partitions
COUNT_TIMEOUT_S = 120.0  # every point counted in InfluxDB


# -- the consumers ------------------------------------------------------------------------


def shipped_env(broker: KafkaBroker, topic: str, group: str, server: InfluxDB2Server) -> dict[str, str]:
    env = {"KAFKA_BROKERS": broker.bootstrap_servers, "KAFKA_TOPIC": topic, "KAFKA_GROUP": group}
    env.update({key: value for key, value in server.compose_env().items() if key.startswith("INFLUX_")})
    return env


def with_internal_metrics(config_text: str, port: int) -> str:
    """`config_text` plus Telegraf's own write numbers served on 127.0.0.1:`port` (every second).

    They also reach the InfluxDB output (measurement internal_write, not counted with the data).
    """
    return config_text.rstrip("\n") + f"""

# Added by the tests: Telegraf's own numbers per output (buffer, written, dropped).
[[inputs.internal]]
  interval = "1s"
  collect_memstats = false
  namepass = ["internal_write"]

[[outputs.prometheus_client]]
  listen = "127.0.0.1:{port}"
  namepass = ["internal_write"]
"""


def start_consumers(start_telegraf: StartTelegraf, env: dict[str, str], *, metrics: bool = False,
                    max_lifetime: float = MAX_LIFETIME_S) -> list[TelegrafProcess]:
    """consumer-a and consumer-b on the shipped file; with `metrics`, each serves its numbers
    at its own `metrics_url` (an attribute set here)."""
    consumers = []
    for name in ("consumer-a", "consumer-b"):
        text, port = SHIPPED_CONSUMER.read_text(), None
        if metrics:
            port = free_loopback_port()
            text = with_internal_metrics(text, port)
        process = start_telegraf(text, env=env, name=name, max_lifetime=max_lifetime)
        process.metrics_url = f"http://127.0.0.1:{port}/metrics" if port else None
        consumers.append(process)
    return consumers


def output_numbers(metrics_url: str, output: str = "influxdb_v2", *, timeout: float = 30.0) -> dict[str, float]:
    """internal_write's numbers for `output`, waiting (bounded) for Telegraf's first report: the page
    is empty until [[inputs.internal]] has collected once and the prometheus output has flushed."""
    return wait_until(lambda: internal_write(metrics_url).get(output), timeout,
                      f"Telegraf's internal_write numbers for {output} at {metrics_url}", poll=0.5)


def errors_in(process: TelegrafProcess) -> list[str]:
    return re.findall(r"^.* E! .*$", process.log_text(), re.M)


# -- the group, as the broker sees it -----------------------------------------------------


def group_assignment(broker: KafkaBroker, group: str) -> dict[str, set[int]]:
    """{member id: partitions it holds} as the broker's group coordinator says, {} unless the group is stable."""
    from confluent_kafka import ConsumerGroupState, KafkaError, KafkaException

    # What describe_consumer_groups answers while a new broker loads __consumer_offsets (the first
    # group's first request creates it) or the group's coordinator moves, or when the loaded
    # machine is slow to answer at all (the caller's wait is bounded): ask again.
    not_yet = {KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE,
               KafkaError.NOT_COORDINATOR, KafkaError._TIMED_OUT}
    admin = broker.admin()
    try:
        description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    except KafkaException as error:
        if error.args[0].code() in not_yet:
            return {}
        raise
    if description.state != ConsumerGroupState.STABLE:
        return {}
    return {
        member.member_id: {tp.partition for tp in member.assignment.topic_partitions} for member in description.members
    }


def both_hold_partitions(broker: KafkaBroker, group: str, partitions: int = PARTITIONS) -> dict[str, set[int]] | None:
    """The assignment when two members each hold partitions and together all of them, else None."""
    assignment = group_assignment(broker, group)
    covered = set().union(*assignment.values()) if assignment else set()
    if len(assignment) == 2 and all(assignment.values()) and covered == set(range(partitions)):
        return assignment
    return None


def lag(broker: KafkaBroker, topic: str, group: str, partitions: int = PARTITIONS) -> dict[int, int]:
    """{partition: end offset - committed offset} of `group` (read without joining it)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(broker.client_config({"group.id": group, "enable.auto.commit": False}))
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] - max(tp.offset, 0) for tp in committed}
    finally:
        consumer.close()


def consumers_holding_partitions(broker: KafkaBroker, topic: str, server: InfluxDB2Server,
                                 start_telegraf: StartTelegraf, **options) -> tuple[str, list[TelegrafProcess], dict]:
    """A fresh group of two shipped consumers, once the broker says both hold partitions."""
    group = f"csv2lp-pipeline-{uuid.uuid4().hex[:8]}"
    consumers = start_consumers(start_telegraf, shipped_env(broker, topic, group, server), **options)
    assignment = wait_until(lambda: both_hold_partitions(broker, group), GROUP_TIMEOUT_S,
                            "two group members holding all partitions between them")
    return group, consumers, assignment


# -- what InfluxDB must count -------------------------------------------------------------


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i + 1])
            i += 2
            continue
        if char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def _series_of(line: str) -> tuple[str, tuple[tuple[str, str], ...], str]:
    """(measurement, sorted tag pairs, timestamp) of a line of csv2lp's (escaped with backslashes)."""
    key_end = next(i for i in range(len(line)) if line[i] == " " and line[i - 1] != "\\")
    key = line[:key_end]
    # Commas inside tag values are escaped: cut at the unescaped ones, keeping each part's escapes.
    pieces, start = [], 0
    for i, char in enumerate(key):
        if char == "," and key[i - 1] != "\\":
            pieces.append(key[start:i])
            start = i + 1
    pieces.append(key[start:])
    measurement = _split_unescaped(pieces[0], "\0")[0]
    tags = tuple(sorted(tuple(_split_unescaped(piece, "=")) for piece in pieces[1:]))
    return measurement, tags, line.rsplit(" ", 1)[1]


def expected_counts(lines_file: Path) -> dict:
    """{(measurement, sorted tag pairs): distinct timestamps} of `csv2lp convert`'s output, as
    InfluxDB2Server.count_per_series answers."""
    times: dict[tuple, set[str]] = {}
    for line in lines_file.read_text().splitlines():
        measurement, tags, stamp = _series_of(line)
        times.setdefault((measurement, tags), set()).add(stamp)
    return {series: len(stamps) for series, stamps in times.items()}


def assert_exact_in_influxdb(server: InfluxDB2Server, expected: dict, *, timeout: float = COUNT_TIMEOUT_S) -> str:
    """Wait (up to `timeout`) until InfluxDB counts `expected` per series. Still short: restart influxd
    and count again (up to RECOUNT_TIMEOUT_S) before calling it a loss. Returns a note, "" if none."""
    def counted():
        return server.count_per_series(measurement=MEASUREMENT)

    want = sum(expected.values())
    try:
        wait_until(lambda: counted() == expected, timeout, f"{want:,} points", poll=1.0)
        return ""
    except AssertionError:
        before = sum(counted().values())
    server.restart()
    deadline = time.monotonic() + RECOUNT_TIMEOUT_S
    while (got := counted()) != expected and time.monotonic() < deadline:
        time.sleep(1.0)
    if got != expected:
        wrong = {series: (got.get(series), n) for series, n in expected.items() if got.get(series) != n}
        raise AssertionError(f"counted {sum(got.values()):,} of {want:,} also after an influxd restart "
                             f"({before:,} before): wrong series (got, want): {list(wrong.items())[:3]}")
    return f"InfluxDB counted {before:,} of {want:,} until a restart, then all: a short count, not a loss"


def generated_movebank(folder: Path, rows: int) -> tuple[Path, dict]:
    """A generated Movebank CSV of `rows` rows in `folder`, and what InfluxDB must count for it
    (expected_counts of `csv2lp convert`'s lines for the same file)."""
    csv = generate(rows, folder / "fishers.csv")
    lines = folder / "fishers.lp"
    done = subprocess.run([sys.executable, "-m", "converter", str(csv), "--preset", "movebank", "-o", str(lines),
                           "-q"], capture_output=True, text=True, timeout=300, cwd=REPO, env=csv2lp_env())
    assert done.returncode == 0, done.stderr
    return csv, expected_counts(lines)
