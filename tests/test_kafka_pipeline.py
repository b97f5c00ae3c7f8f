"""csv2lp --kafka-brokers → Kafka → two Telegraf consumers (telegraf/kafka-consumer.conf) → InfluxDB 2.8.0.

The producer is csv2lp itself (as a process, this checkout) reading a generated Movebank
CSV; the consumers run the shipped file unchanged, in one consumer group, and every series
must count exactly in InfluxDB what `csv2lp convert` writes for the same file (points:
distinct timestamps per series). The broker says which partitions each consumer holds. The
second test stops the broker (SIGTERM, and once SIGKILL) while csv2lp produces and both
consumers read, and starts it again on the same data: csv2lp says it waits, finishes, and
the database is exact. Consumer and InfluxDB faults: test_kafka_outages.py.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from support.csv2lp_kafka import PacedInput, acknowledged_lines, finish, run_csv2lp, start_paced
from support.kafka import KafkaBroker, fresh_topic_name
from support.kafka_fleet import (PARTITIONS, assert_exact_in_influxdb, consumers_holding_partitions, errors_in,
                                generated_movebank, lag)
from support.telegraf import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.telegraf, pytest.mark.influxdb2, pytest.mark.slow]

ROWS = 60_000


@pytest.fixture(scope="module")
def movebank(tmp_path_factory) -> tuple[Path, dict]:
    return generated_movebank(tmp_path_factory.mktemp("kafka-pipeline"), ROWS)


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
    assert acknowledged_lines(run.stderr) == ROWS, run.stderr
    note = assert_exact_in_influxdb(private_influxdb2, expected)
    print(f"\n{ROWS:,} rows counted exactly {time.monotonic() - began:.1f} s after csv2lp started "
          f"(csv2lp took {run.seconds:.1f} s){note and '; ' + note}; assignment {assignment}")
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


BROKER_DOWN_S = 10.0


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_the_broker_stopped_mid_stream_csv2lp_waits_and_influxdb_is_exact(how, private_kafka_broker,
                                                                         private_influxdb2, start_telegraf, movebank):
    """SIGTERM: Kafka's clean shutdown; SIGKILL: a crash, the broker recovers its logs on the same data.
    Either way csv2lp says it waits, finishes with every line acknowledged, and nothing is lost or
    left uncommitted (a producer that gives up, or resends without idempotence past a crash, fails here)."""
    broker = private_kafka_broker
    csv, expected = movebank
    topic = broker.create_topic(fresh_topic_name(), partitions=PARTITIONS)
    group, consumers, _ = consumers_holding_partitions(broker, topic, private_influxdb2, start_telegraf)
    paced = PacedInput(csv, chunk=128 * 1024, every=0.1)  # ~1.3 MB/s: about 15 s of producing
    process = start_paced(["--preset", "movebank", "--kafka-brokers", broker.bootstrap_servers,
                           "--kafka-topic", topic], paced)
    try:
        paced.wait_for(0.3)
        at_stop = paced.fraction
        if how == "SIGTERM":
            broker.stop()
        else:
            broker.kill()
        time.sleep(BROKER_DOWN_S)
        broker.start()
        run = finish(process, paced, timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert at_stop < 1.0, "the whole file was read before the broker stopped: nothing was tested"
    assert run.returncode == 0, run.stderr
    assert "Kafka has acknowledged nothing for" in run.stderr, run.stderr
    assert acknowledged_lines(run.stderr) == ROWS, run.stderr
    note = assert_exact_in_influxdb(private_influxdb2, expected)
    print(f"\nbroker {how} at {at_stop:.0%} of the input, up {BROKER_DOWN_S:.0f} s later "
          f"(its start took {broker.last_start_seconds:.1f} s); csv2lp done {run.seconds:.1f} s after it answered; "
          f"exact {note}")
    assert all(process.running for process in consumers)
    wait_until(lambda: set(lag(broker, topic, group).values()) == {0}, 60.0, "every offset committed")
