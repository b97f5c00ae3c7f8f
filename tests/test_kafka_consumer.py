"""The shipped telegraf/kafka-consumer.conf against a real Kafka broker, real Telegrafs and a real InfluxDB 2.

Line protocol goes into a 4-partition topic in 1,000-line messages keyed by series,
as csv2lp's Kafka producer will send it; two Telegraf processes in one consumer group
run the shipped file unchanged (only the KAFKA_* and INFLUX_* variables differ) and
write into InfluxDB 2.8.0, where every series must count exactly. The broker says
which partitions each group member holds. A point written twice (a killed consumer's
uncommitted messages, read again) is stored once, so exact counts mean nothing lost.
The last test shows the trap the file's kafka_version avoids.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid

import pytest
from confluent_kafka import Producer
from support.influxdb2 import InfluxDB2Server
from support.kafka import KafkaBroker, fresh_topic_name
from support.kafka_fleet import (PARTITIONS, SHIPPED_CONSUMER, both_hold_partitions, errors_in, group_assignment, lag,
                                shipped_env, start_consumers)
from support.telegraf import wait_until

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

pytestmark = [pytest.mark.kafka, pytest.mark.telegraf, pytest.mark.influxdb2]

SHIPPED = SHIPPED_CONSUMER
LINES_PER_MESSAGE = 1_000  # what the shipped file is sized for
SERIES = 12
POINTS_PER_SERIES = 5_000
TOTAL = SERIES * POINTS_PER_SERIES  # 60,000 lines, 60 messages
MEASUREMENT = "fix"
START_NS = 1_297_445_400_000_000_000  # 2011-02-11 17:30 UTC: years-old points, as Movebank's
FIX_EVERY_NS = 600_000_000_000

GROUP_TIMEOUT_S = 60.0  # both Telegrafs connected and holding partitions
COUNT_TIMEOUT_S = 90.0  # every point counted in InfluxDB
COMMIT_TIMEOUT_S = 30.0


def individual(index: int) -> str:
    return f"G{index + 1:02d}"


def series_lines(index: int) -> list[bytes]:
    """POINTS_PER_SERIES Movebank-like lines of one animal, ~150 bytes each."""
    name = individual(index)
    lines = []
    for n in range(POINTS_PER_SERIES):
        lat = 42.6 + index * 0.01 + (n % 97) * 1e-5
        lon = -73.9 + index * 0.01 - (n % 89) * 1e-5
        lines.append(
            f"{MEASUREMENT},individual-local-identifier={name},study-name=Generated\\ Martes\\ pennanti "
            f'location-lat={lat:.7f},location-long={lon:.7f},eobs:battery-voltage={3600 + n % 500}i,'
            f'eobs:status="{"ABCD"[n % 4]}" {START_NS + index * 7_919_000_000 + n * FIX_EVERY_NS}'.encode()
        )
    return lines


def messages() -> list[tuple[bytes, bytes]]:
    """(key, value) of every message: 1,000 lines of one series each, the series interleaved."""
    per_series = []
    for index in range(SERIES):
        lines = series_lines(index)
        chunks = [b"\n".join(lines[i : i + LINES_PER_MESSAGE]) + b"\n" for i in range(0, len(lines), LINES_PER_MESSAGE)]
        per_series.append([(individual(index).encode(), chunk) for chunk in chunks])
    return [message for round_ in zip(*per_series) for message in round_]


def expected_counts() -> dict:
    """{(measurement, sorted tag pairs): points}, as InfluxDB2Server.count_per_series answers."""
    study = ("study-name", "Generated Martes pennanti")
    return {(MEASUREMENT, (("individual-local-identifier", individual(i)), study)): POINTS_PER_SERIES
            for i in range(SERIES)}


class Publisher:
    """A confluent-kafka producer (acks=all, lz4) that records the partition of every delivered message."""

    def __init__(self, broker: KafkaBroker, topic: str) -> None:
        self.topic = topic
        self.partitions: dict[int, int] = {}
        self.errors: list = []
        self.producer = Producer(broker.client_config({"acks": "all", "compression.type": "lz4", "linger.ms": 5}))

    def _delivered(self, error, message) -> None:
        if error is not None:
            self.errors.append(error)
        else:
            self.partitions[message.partition()] = self.partitions.get(message.partition(), 0) + 1

    def send(self, batch: list[tuple[bytes, bytes]], *, every: float = 0.0) -> None:
        for key, value in batch:
            self.producer.produce(self.topic, key=key, value=value, on_delivery=self._delivered)
            self.producer.poll(0)
            if every:
                time.sleep(every)
        assert self.producer.flush(60) == 0, "messages still undelivered after 60 s"
        assert self.errors == [], self.errors


def total(server: InfluxDB2Server) -> int:
    return sum(server.count_per_series(measurement=MEASUREMENT).values())


def assert_counts_exact(server: InfluxDB2Server, expected: dict, timeout: float = COUNT_TIMEOUT_S) -> str:
    """Wait until InfluxDB counts `expected` per series; a count still short then is re-checked after
    restarting influxd (an acknowledged point counted late is not a loss). Returns a note, "" if none."""
    want = sum(expected.values())
    try:
        wait_until(lambda: server.count_per_series(measurement=MEASUREMENT) == expected, timeout,
                   f"{want:,} points in {len(expected)} series", poll=1.0)
        return ""
    except AssertionError:
        before = server.count_per_series(measurement=MEASUREMENT)
    server.restart()
    after = server.count_per_series(measurement=MEASUREMENT)
    assert after == expected, (f"counted {sum(after.values()):,} of {want:,} after an influxd restart "
                               f"({sum(before.values()):,} before): a loss; per series {after}")
    return f"InfluxDB counted {sum(before.values()):,} of {want:,} until a restart, then all: a short count"


@pytest.fixture
def topic(kafka_broker: KafkaBroker):
    name = kafka_broker.create_topic(fresh_topic_name(), partitions=PARTITIONS)
    yield name
    if kafka_broker.running:
        kafka_broker.delete_topic(name)


# -- the shipped file, without a broker ---------------------------------------------------


def test_the_shipped_sizes_keep_the_rule_for_1000_line_messages():
    config = tomllib.loads(SHIPPED.read_text())
    agent, consumer = config["agent"], config["inputs"]["kafka_consumer"][0]
    in_flight = consumer["max_undelivered_messages"] * LINES_PER_MESSAGE
    assert in_flight < agent["metric_buffer_limit"]  # a full buffer never drops a tracked message
    assert in_flight >= 4 * agent["metric_batch_size"]  # enough in flight for full batches back to back
    assert consumer["kafka_version"] == "4.1.0" and consumer["offset"] == "oldest"
    assert consumer["max_message_len"] == 0 and consumer["data_format"] == "influx"
    assert "1,000 lines" in SHIPPED.read_text()


def test_the_shipped_file_checks_and_refuses_to_start_without_its_topic(telegraf_bin):
    env = {"PATH": "/usr/bin:/bin", "KAFKA_BROKERS": "127.0.0.1:9", "KAFKA_TOPIC": "lines",
           "INFLUX_URL": "http://127.0.0.1:9", "INFLUX_TOKEN": "t", "INFLUX_ORG": "o", "INFLUX_BUCKET": "b"}
    check = [str(telegraf_bin), "config", "check", "--config", str(SHIPPED)]
    done = subprocess.run(check, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    del env["KAFKA_TOPIC"]
    done = subprocess.run(check, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "required variable KAFKA_TOPIC is missing a value: set KAFKA_TOPIC" in done.stderr


# -- end to end ---------------------------------------------------------------------------


def test_two_telegrafs_in_one_group_share_the_partitions_and_write_every_line(
    kafka_broker, topic, private_influxdb2, start_telegraf
):
    group = f"csv2lp-test-{uuid.uuid4().hex[:8]}"
    consumers = start_consumers(start_telegraf, shipped_env(kafka_broker, topic, group, private_influxdb2))
    assignment = wait_until(lambda: both_hold_partitions(kafka_broker, group), GROUP_TIMEOUT_S,
                            "two group members holding all partitions between them")
    print(f"\nassignment: {assignment}")

    publisher = Publisher(kafka_broker, topic)
    began = time.monotonic()
    publisher.send(messages())
    assert sorted(publisher.partitions) == list(range(PARTITIONS)), publisher.partitions  # every member has work
    assert sum(publisher.partitions.values()) == TOTAL // LINES_PER_MESSAGE

    note = assert_counts_exact(private_influxdb2, expected_counts())
    print(f"{TOTAL:,} lines counted {time.monotonic() - began:.1f} s after the first message {note}")
    wait_until(lambda: set(lag(kafka_broker, topic, group).values()) == {0}, COMMIT_TIMEOUT_S,
               "every partition's offset committed to its end")
    # Both still members, each still holding what it held: no rebalance, no crash.
    assert group_assignment(kafka_broker, group) == assignment
    assert all(process.running for process in consumers)
    assert [errors_in(process) for process in consumers] == [[], []]


def test_a_consumer_killed_mid_stream_and_restarted_loses_nothing(
    kafka_broker, topic, private_influxdb2, start_telegraf
):
    group = f"csv2lp-test-{uuid.uuid4().hex[:8]}"
    first, second = start_consumers(start_telegraf, shipped_env(kafka_broker, topic, group, private_influxdb2))
    wait_until(lambda: both_hold_partitions(kafka_broker, group), GROUP_TIMEOUT_S,
               "two group members holding all partitions between them")

    publisher = Publisher(kafka_broker, topic)
    failure: list[BaseException] = []

    def publish() -> None:
        try:
            publisher.send(messages(), every=0.1)  # 60 messages over ~6 s
        except BaseException as error:  # re-raised in the test's thread
            failure.append(error)

    sender = threading.Thread(target=publish, daemon=True)
    sender.start()
    wait_until(lambda: total(private_influxdb2) >= 10_000, COUNT_TIMEOUT_S, "10,000 points in InfluxDB", poll=0.2)
    first.kill()  # SIGKILL: its in-flight messages are neither written nor committed
    at_kill = total(private_influxdb2)
    assert at_kill < TOTAL, "every line was in before the kill: the test did not kill mid-stream"
    first.start()
    sender.join(timeout=90)
    assert not sender.is_alive() and failure == [], failure

    note = assert_counts_exact(private_influxdb2, expected_counts())
    print(f"\nkilled consumer-a at {at_kill:,} of {TOTAL:,} points; all counted {note}")
    wait_until(lambda: set(lag(kafka_broker, topic, group).values()) == {0}, COMMIT_TIMEOUT_S,
               "every partition's offset committed to its end")
    # The restarted Telegraf rejoined the group and got partitions back.
    wait_until(lambda: both_hold_partitions(kafka_broker, group), GROUP_TIMEOUT_S,
               "the restarted consumer back in the group with partitions")
    assert first.running and second.running


def test_without_kafka_version_telegraf_reads_nothing_from_kafka_4(kafka_broker, topic, influxdb2, influx2_bucket,
                                                                   start_telegraf):
    """The trap the shipped kafka_version avoids: the plugin's default protocol (0.10.2.0) is refused by Kafka 4."""
    text = SHIPPED.read_text()
    setting = '  kafka_version = "4.1.0"\n'
    assert text.count(setting) == 1
    env = shipped_env(kafka_broker, topic, f"csv2lp-test-{uuid.uuid4().hex[:8]}", influxdb2)
    env["INFLUX_BUCKET"] = influx2_bucket
    Publisher(kafka_broker, topic).send(messages()[:4])
    broker_log = kafka_broker.log_path.stat().st_size
    telegraf = start_telegraf(text.replace(setting, ""), env=env)
    for _ in range(2):  # every ~2 s, for each partition
        since = telegraf.log_size()
        telegraf.wait_for_log(rf"E! \[inputs\.kafka_consumer\] .*error while consuming {topic}/\d: EOF$", since=since)
    time.sleep(3)  # flush_interval 1 s: anything read would be written by now
    assert influxdb2.count_per_series(influx2_bucket) == {}
    with open(kafka_broker.log_path, "rb") as log:
        log.seek(broker_log)
        assert b"UnsupportedVersionException" in log.read()
