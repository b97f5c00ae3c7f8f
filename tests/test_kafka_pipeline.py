"""csv2lp --kafka-brokers → Kafka → two Telegraf consumers (telegraf/kafka-consumer.conf) → InfluxDB 2.8.0.

The producer is csv2lp itself (as a process, this checkout) reading a generated Movebank
CSV; the consumers run the shipped file unchanged, in one consumer group, and every series
must count exactly in InfluxDB what `csv2lp convert` writes for the same file (points:
distinct timestamps per series). The broker says which partitions each consumer holds. The
second test stops the broker (SIGTERM) while csv2lp produces and both consumers read, and
starts it again on the same data: csv2lp waits and finishes, and the database is exact.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from support.csv2lp_kafka import PacedInput, Run, hand_over_stdin, run_csv2lp, start_csv2lp
from support.kafka import KafkaBroker, fresh_topic_name
from support.movebank_gen import generate
from support.telegraf import wait_until
from test_kafka_consumer import PARTITIONS, both_hold_partitions, errors_in, lag, shipped_env, start_consumers

pytestmark = [pytest.mark.kafka, pytest.mark.telegraf, pytest.mark.influxdb2, pytest.mark.slow]

ROWS = 60_000
MEASUREMENT = "movebank"
GROUP_TIMEOUT_S = 60.0
COUNT_TIMEOUT_S = 120.0
ACKED = re.compile(r"^([\d,]+) lines acknowledged by Kafka in ([\d,]+) message", re.M)


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


@pytest.fixture(scope="module")
def movebank(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("kafka-pipeline")
    csv = generate(ROWS, folder / "fishers.csv")
    lines = folder / "fishers.lp"
    done = subprocess.run(["python3", "-m", "converter", str(csv), "--preset", "movebank", "-o", str(lines), "-q"],
                          capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    return csv, expected_counts(lines)


def consumers_holding_partitions(kafka_broker, topic, server, start_telegraf):
    group = f"csv2lp-pipeline-{uuid.uuid4().hex[:8]}"
    consumers = start_consumers(start_telegraf, shipped_env(kafka_broker, topic, group, server))
    assignment = wait_until(lambda: both_hold_partitions(kafka_broker, group), GROUP_TIMEOUT_S,
                            "two group members holding all partitions between them")
    return group, consumers, assignment


def assert_exact_in_influxdb(server, expected: dict) -> None:
    def counted():
        return server.count_per_series(measurement=MEASUREMENT)

    try:
        wait_until(lambda: counted() == expected, COUNT_TIMEOUT_S, f"{sum(expected.values()):,} points", poll=1.0)
    except AssertionError:
        got = counted()
        wrong = {series: (got.get(series), want) for series, want in expected.items() if got.get(series) != want}
        raise AssertionError(f"counted {sum(got.values()):,} of {sum(expected.values()):,}; wrong series "
                             f"(got, want): {list(wrong.items())[:3]}") from None


def test_csv2lp_to_kafka_to_two_telegrafs_to_influxdb_is_exact(kafka_broker, private_influxdb2, start_telegraf,
                                                             movebank):
    csv, expected = movebank
    topic = kafka_broker.create_topic(fresh_topic_name(), partitions=PARTITIONS)
    group, consumers, assignment = consumers_holding_partitions(kafka_broker, topic, private_influxdb2,
                                                                start_telegraf)
    began = time.monotonic()
    run = run_csv2lp([str(csv), "--preset", "movebank", "--kafka-brokers", kafka_broker.bootstrap_servers,
                      "--kafka-topic", topic])
    assert run.returncode == 0, run.stderr
    assert int(ACKED.search(run.stderr).group(1).replace(",", "")) == ROWS, run.stderr
    assert_exact_in_influxdb(private_influxdb2, expected)
    print(f"\n{ROWS:,} rows counted exactly {time.monotonic() - began:.1f} s after csv2lp started; "
          f"assignment {assignment}")
    wait_until(lambda: set(lag(kafka_broker, topic, group).values()) == {0}, 30.0, "every offset committed")
    # Each consumer held partitions that carried messages: both did part of the work.
    held = list(assignment.values())
    per_partition = lag_free_ends(kafka_broker, topic)
    assert all(sum(per_partition[p] for p in partitions) > 0 for partitions in held), (held, per_partition)
    assert [errors_in(process) for process in consumers] == [[], []]


def lag_free_ends(broker: KafkaBroker, topic: str) -> dict[int, int]:
    """{partition: its end offset}: how many messages each partition got."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(broker.client_config({"group.id": f"ends-{uuid.uuid4().hex[:6]}"}))
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(PARTITIONS)}
    finally:
        consumer.close()


def test_the_broker_stopped_mid_stream_csv2lp_waits_and_influxdb_is_exact(private_kafka_broker, private_influxdb2,
                                                                         start_telegraf, movebank):
    broker = private_kafka_broker
    csv, expected = movebank
    topic = broker.create_topic(fresh_topic_name(), partitions=PARTITIONS)
    group, consumers, _ = consumers_holding_partitions(broker, topic, private_influxdb2, start_telegraf)
    paced = PacedInput(csv, chunk=128 * 1024, every=0.1)  # ~1.3 MB/s: about 15 s of producing
    process = start_csv2lp(["-", "--preset", "movebank", "--kafka-brokers", broker.bootstrap_servers,
                            "--kafka-topic", topic], stdin=subprocess.PIPE)
    paced.start(hand_over_stdin(process))
    try:
        paced.wait_for(0.3)
        broker.stop()
        time.sleep(10.0)
        broker.start()
        stdout, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        paced.join()
    run = Run(process.returncode, stdout, stderr, 0.0)
    assert run.returncode == 0, run.stderr
    assert "Kafka has acknowledged nothing for" in run.stderr, run.stderr
    assert int(ACKED.search(run.stderr).group(1).replace(",", "")) == ROWS, run.stderr
    assert_exact_in_influxdb(private_influxdb2, expected)
    assert all(process.running for process in consumers)
    wait_until(lambda: set(lag(broker, topic, group).values()) == {0}, 60.0, "every offset committed")
