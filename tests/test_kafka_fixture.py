"""The Kafka fixture itself, against the real broker: what goes in comes out, and survives stops and crashes.

Every later Kafka test (the Telegraf consumer's, csv2lp's Kafka sink's) trusts these
helpers. The last tests record what a confluent-kafka producer sees when the topic does
not exist (auto-create off) and when the broker is down: what csv2lp's sink must handle.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from support.kafka import CLUSTER_ID, KafkaBroker, KafkaBrokerError, fresh_topic_name, require_kafka
from support.server_process import running

pytestmark = pytest.mark.kafka

CONSUME_TIMEOUT_S = 60.0
DELIVERY_TIMEOUT_S = 60.0


def produce(broker: KafkaBroker, topic: str, messages: list[tuple[bytes, bytes]], *, settings=None,
            flush: float | None = DELIVERY_TIMEOUT_S) -> tuple[Producer, list]:
    """Produce (key, value) pairs; return the producer and its delivery reports
    [(error, key, value, partition, offset)].

    With `flush`, wait that long for every report; otherwise the caller polls/flushes.
    """
    reports: list = []

    def delivered(error, message):
        reports.append((error, message.key(), message.value(), message.partition(), message.offset()))

    producer = Producer(broker.client_config({"acks": "all", "linger.ms": 5, **(settings or {})}))
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: serve reports, then try again
                producer.poll(0.1)
        producer.poll(0)
    if flush is not None:
        left = producer.flush(flush)
        assert left == 0, f"{left} messages still undelivered after {flush:.0f} s"
    return producer, reports


def consume(broker: KafkaBroker, topic: str, expected: int, *, timeout: float = CONSUME_TIMEOUT_S,
            linger: float = 1.0) -> list[tuple[int, bytes, bytes]]:
    """Read `topic` from the start in a new group: [(partition, key, value)] in arrival order.

    Stops `linger` seconds after `expected` messages arrived (so that extra ones, e.g.
    duplicates, are seen), or at `timeout`.
    """
    consumer = Consumer(broker.client_config({
        "group.id": f"test-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }))
    consumer.subscribe([topic])
    got: list[tuple[int, bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"consumer error: {message.error()}")
            got.append((message.partition(), message.key(), message.value()))
            if len(got) >= expected:
                deadline = min(deadline, time.monotonic() + linger)
    finally:
        consumer.close()
    return got


def numbered(n: int, *, start: int = 0, keys: int = 1) -> list[tuple[bytes, bytes]]:
    return [(f"series-{i % keys}".encode(), f"message {i}".encode()) for i in range(start, start + n)]


# -- the fixture ------------------------------------------------------------------------


def test_the_broker_runs_under_the_cluster_id_it_was_formatted_with(kafka_broker):
    assert CLUSTER_ID.fullmatch(kafka_broker.cluster_id or "")
    metadata = kafka_broker.admin().list_topics(timeout=10)
    assert metadata.cluster_id == kafka_broker.cluster_id
    assert {node: (b.host, b.port) for node, b in metadata.brokers.items()} == {1: ("127.0.0.1", kafka_broker.port)}
    assert kafka_broker.server_properties()["auto.create.topics.enable"] == "false"


def test_a_log_line_before_the_uuid_is_refused_as_cluster_id(tmp_path, monkeypatch):
    """The trap of REFERENCE.md: `random-uuid` printing a log line first must not be formatted in."""
    lib, java = require_kafka()
    broker = KafkaBroker(tmp_path, lib=lib, java=java)
    calls = []

    def tool(*args):
        calls.append(args)
        return ("[2026-12-06 10:00:00,000] INFO Registered kafka:type=kafka.Log4jController MBean\n"
                "W8ukhDRsQyWhZ5MV7FiM0A\n")

    monkeypatch.setattr(broker, "storage_tool", tool)
    with pytest.raises(KafkaBrokerError, match="not a 22-character cluster id"):
        broker.format()
    assert calls == [("random-uuid",)]  # `format` was never run
    assert not broker.formatted


def test_n_messages_come_back_exactly_in_order(kafka_broker, kafka_topic):
    messages = numbered(5_000, keys=7)
    _, reports = produce(kafka_broker, kafka_topic, messages)
    assert [error for error, *_ in reports if error is not None] == []
    assert sorted(offset for *_, offset in reports) == list(range(5_000))
    got = consume(kafka_broker, kafka_topic, len(messages))
    assert [(key, value) for _, key, value in got] == messages  # one partition: the order of production


def test_a_topic_gets_the_partitions_asked_for_and_keys_stick_to_one(kafka_broker):
    topic = kafka_broker.create_topic(fresh_topic_name(), partitions=4)
    try:
        assert kafka_broker.partition_leaders(topic) == {0: 1, 1: 1, 2: 1, 3: 1}
        with pytest.raises(KafkaBrokerError, match="already exists"):
            kafka_broker.create_topic(topic, partitions=4)
        messages = numbered(2_000, keys=16)
        produce(kafka_broker, topic, messages)
        got = consume(kafka_broker, topic, len(messages))
        assert sorted((key, value) for _, key, value in got) == sorted(messages)
        partitions_of_key: dict[bytes, set[int]] = {}
        for partition, key, _ in got:
            partitions_of_key.setdefault(key, set()).add(partition)
        assert all(len(p) == 1 for p in partitions_of_key.values()), partitions_of_key
        assert set().union(*partitions_of_key.values()) == {0, 1, 2, 3}  # 16 keys spread over all 4
        for key in partitions_of_key:  # and, within a partition, each key keeps its order
            assert [v for _, k, v in got if k == key] == [v for k, v in messages if k == key]
    finally:
        kafka_broker.delete_topic(topic)


def test_a_clean_stop_and_start_keeps_every_message(private_kafka_broker):
    broker = private_kafka_broker
    topic = broker.create_topic(fresh_topic_name())
    messages = numbered(3_000)
    produce(broker, topic, messages)
    port, cluster_id = broker.port, broker.cluster_id
    broker.stop()
    assert not broker.running
    broker.start()
    assert (broker.port, broker.cluster_id) == (port, cluster_id)
    assert broker.admin().list_topics(timeout=10).cluster_id == cluster_id  # not formatted again
    assert [(k, v) for _, k, v in consume(broker, topic, len(messages))] == messages


def test_sigkill_keeps_what_was_acknowledged_and_the_producer_delivers_the_rest(private_kafka_broker):
    """Acknowledged (acks=all) messages survive a SIGKILL (they are in the page cache); queued ones
    are delivered after the restart by the producer's retries, exactly once with idempotence.

    The start after a SIGKILL takes ~9 s longer than after a clean stop: the controller
    fences the dead incarnation only when its broker.session.timeout.ms (9 s) runs out."""
    broker = private_kafka_broker
    topic = broker.create_topic(fresh_topic_name())
    first, second = numbered(2_000), numbered(2_000, start=2_000)
    producer, reports = produce(broker, topic, first, settings={"enable.idempotence": True})
    assert len(reports) == 2_000 and all(error is None for error, *_ in reports)
    # The second half is queued, some of it in flight, when the broker dies.
    for key, value in second:
        producer.produce(topic, key=key, value=value,
                         on_delivery=lambda e, m: reports.append((e, m.key(), m.value(), m.partition(), m.offset())))
    broker.kill()
    assert not broker.running
    acknowledged_at_kill = [(k, v) for error, k, v, *_ in reports if error is None]
    broker.start()
    # The first consumer sees at least what had been acknowledged.
    got = [(k, v) for _, k, v in consume(broker, topic, len(acknowledged_at_kill))]
    assert got[: len(acknowledged_at_kill)] == acknowledged_at_kill
    assert producer.flush(DELIVERY_TIMEOUT_S) == 0
    assert [e for e, *_ in reports if e is not None] == []
    assert [(k, v) for _, k, v in consume(broker, topic, 4_000)] == first + second  # no loss, no duplicate


# -- what a producer sees (for csv2lp's Kafka sink) --------------------------------------


def test_unknown_topic_with_auto_create_off_fails_each_message_with_unknown_topic_or_part(kafka_broker):
    """produce() accepts the message; librdkafka waits up to topic.metadata.propagation.max.ms
    (default 30 s; 2 s here) for the topic to appear, then fails every message's delivery
    report with UNKNOWN_TOPIC_OR_PART (broker error 3, "Unknown topic or partition", not
    retriable). error_cb hears nothing; the topic is not created. If message.timeout.ms is
    shorter than that wait, the reports say _MSG_TIMED_OUT instead."""
    topic = fresh_topic_name()
    errors: list = []
    began = time.monotonic()
    producer, reports = produce(kafka_broker, topic, numbered(3),
                                settings={"topic.metadata.propagation.max.ms": 2_000, "error_cb": errors.append})
    waited = time.monotonic() - began
    assert [(e.code(), e.retriable()) for e, *_ in reports] == [(KafkaError.UNKNOWN_TOPIC_OR_PART, False)] * 3
    assert 1.5 < waited < 20, waited
    assert errors == []
    assert topic not in kafka_broker.topics()


def test_with_auto_create_on_the_first_message_creates_the_topic():
    lib, java = require_kafka()
    for broker in running(KafkaBroker(lib=lib, java=java, auto_create_topics=True)):
        topic = fresh_topic_name()
        _, reports = produce(broker, topic, numbered(3))
        assert [(e, p) for e, _, _, p, _ in reports] == [(None, 0)] * 3
        assert broker.partition_leaders(topic) == {0: 1}  # num.partitions=1


def test_a_stopped_broker_times_messages_out_and_one_back_in_time_gets_them(private_kafka_broker):
    """Broker down: produce() still accepts; error_cb hears _TRANSPORT ("Connection refused")
    and _ALL_BROKERS_DOWN at once; each delivery report fails with _MSG_TIMED_OUT
    ("Local: Message timed out") after message.timeout.ms (default 300 s). A broker that
    is back within message.timeout.ms gets every queued message: nothing is lost."""
    broker = private_kafka_broker
    topic = broker.create_topic(fresh_topic_name())
    broker.stop()
    errors: list = []
    began = time.monotonic()
    _, reports = produce(broker, topic, numbered(3),
                         settings={"message.timeout.ms": 3_000, "error_cb": errors.append})
    waited = time.monotonic() - began
    assert [e.code() for e, *_ in reports] == [KafkaError._MSG_TIMED_OUT] * 3
    assert 2.5 < waited < 20, waited
    codes = {e.code() for e in errors}
    assert {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN} <= codes, errors

    producer, reports = produce(broker, topic, numbered(3, start=3), settings={"message.timeout.ms": 120_000},
                                flush=None)
    assert producer.flush(2) == 3  # nothing can be delivered yet
    broker.start()
    assert producer.flush(DELIVERY_TIMEOUT_S) == 0
    assert [e for e, *_ in reports] == [None] * 3
    assert [(k, v) for _, k, v in consume(broker, topic, 3)] == numbered(3, start=3)  # the timed-out ones are gone
