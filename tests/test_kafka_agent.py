"""The agent path: csv2lp execd under Telegraf (telegraf/telegraf-kafka.conf) → outputs.kafka → Kafka →
Telegraf kafka_consumer (telegraf/kafka-consumer-agent.conf) → InfluxDB 2.8.0.

Both shipped files run as shipped but for the edits a test machine needs (execd runs this
checkout, prometheus_client on a free port, the spool in a temp folder; named in
support/shipped_configs.py). A generated Movebank file is dropped into the spool the way
the README says (written elsewhere, renamed in); every series must count in InfluxDB
what `csv2lp convert` writes for it. The topic is read back too: one line per message
(Telegraf v1.39.3's outputs.kafka serializes each metric alone; it has no batch format),
keyed by the `individual` tag (routing_tag), so each animal sits in one partition, and
stamped with the write time (producer_timestamp = "now"), never the data's 2011.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from support import shipped_configs
from support.csv2lp_kafka import read_topic
from support.data import REPO
from support.influxdb import free_loopback_port
from support.kafka import fresh_topic_name
from support.kafka_fleet import assert_exact_in_influxdb, errors_in, expected_counts, shipped_env
from support.movebank_gen import generate
from support.shipped_configs import ConfigText, execd_command
from support.telegraf import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.telegraf, pytest.mark.influxdb2, pytest.mark.slow]

SHIPPED_AGENT = REPO / "telegraf" / "telegraf-kafka.conf"
SHIPPED_CONSUMER = REPO / "telegraf" / "kafka-consumer-agent.conf"
ROWS = 10_000
PARTITIONS = 4


def agent_conf(metrics_port: int, csv2lp_toml: Path) -> str:
    config = ConfigText.shipped(SHIPPED_AGENT)
    config.set("[[outputs.prometheus_client]]", "listen", f"127.0.0.1:{metrics_port}")
    config.set("[[inputs.execd]]", "command", execd_command(csv2lp_toml))
    config.set("[[inputs.execd]]", "environment", [f"PYTHONPATH={REPO}"])
    return config.text


def reference_counts(csv: Path, tmp_path: Path) -> dict:
    lines = tmp_path / "fishers.lp"
    done = subprocess.run([sys.executable, "-m", "converter", str(csv), "--preset", "movebank", "-o", str(lines),
                           "-q"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return expected_counts(lines)


def start_agent_path(broker, server, start_telegraf, tmp_path: Path, topic: str):
    """The agent (csv2lp execd under telegraf-kafka.conf) and one consumer (kafka-consumer-agent.conf)."""
    port = free_loopback_port()
    spool = tmp_path / "spool"
    spool.mkdir()
    toml = tmp_path / "csv2lp.toml"
    toml.write_text(shipped_configs.csv2lp_toml(spool=spool, state_file=tmp_path / "state.json",
                                                metrics_port=port).text)
    env = {"KAFKA_BROKERS": broker.bootstrap_servers, "KAFKA_TOPIC": topic}
    agent = start_telegraf(agent_conf(port, toml), env=env, name="agent")
    group = f"csv2lp-agents-{uuid.uuid4().hex[:8]}"
    consumer = start_telegraf(SHIPPED_CONSUMER.read_text(), name="consumer",
                              env=shipped_env(broker, topic, group, server))
    return spool, agent, consumer


def drop(csv: Path, spool: Path) -> None:
    """Into the spool as the README says: written under a hidden name, then renamed in."""
    hidden = spool / f".{csv.name}.part"
    hidden.write_bytes(csv.read_bytes())
    hidden.rename(spool / csv.name)


def test_a_file_dropped_in_the_agents_spool_lands_in_influxdb_exactly(kafka_broker, private_influxdb2,
                                                                    start_telegraf, tmp_path):
    csv = generate(ROWS, tmp_path / "fishers.csv")
    expected = reference_counts(csv, tmp_path)
    topic = kafka_broker.create_topic(fresh_topic_name(), partitions=PARTITIONS)
    spool, agent, consumer = start_agent_path(kafka_broker, private_influxdb2, start_telegraf, tmp_path, topic)

    began_ms = time.time() * 1000
    drop(csv, spool)
    assert_exact_in_influxdb(private_influxdb2, expected)
    wait_until(lambda: (spool / "done" / "fishers.csv").exists(), 60.0, "the file moved to done/")
    print(f"\n{ROWS:,} rows counted exactly {time.time() - began_ms / 1000:.1f} s after the drop")

    records = read_topic(kafka_broker, topic, expected_lines=ROWS)
    assert sum(record.value.count(b"\n") for record in records) == ROWS  # each line once in the topic
    assert {record.value.count(b"\n") for record in records} == {1}  # one line per message
    partitions: dict[bytes, set[int]] = {}
    for record in records:
        individual = re.search(rb",individual=([^,]+),", record.value).group(1)
        assert record.key == individual
        partitions.setdefault(record.key, set()).add(record.partition)
    assert all(len(p) == 1 for p in partitions.values()), partitions
    assert len(partitions) == 20
    assert {record.timestamp_type for record in records} == {1}
    assert min(record.timestamp_ms for record in records) >= began_ms - 1_000  # written now, not in 2011
    # csv2lp's flow control watched the Kafka output's buffer, as it watches influxdb_v2's.
    assert re.search(r"flow control: .*watching .*kafka", agent.log_text()), agent.log_text()[-3000:]
    assert errors_in(agent) == [] and errors_in(consumer) == []


OUTAGE_S = 60.0
OUTAGE_ROWS = 40_000


def test_the_broker_away_60_s_while_the_agent_imports_loses_nothing(private_kafka_broker, private_influxdb2,
                                                                  start_telegraf, tmp_path):
    broker = private_kafka_broker
    csv = generate(OUTAGE_ROWS, tmp_path / "fishers.csv")
    expected = reference_counts(csv, tmp_path)
    topic = broker.create_topic(fresh_topic_name(), partitions=PARTITIONS)
    spool, agent, consumer = start_agent_path(broker, private_influxdb2, start_telegraf, tmp_path, topic)
    drop(csv, spool)

    def counted() -> int:
        return sum(private_influxdb2.count_per_series(measurement="movebank").values())

    wait_until(lambda: counted() > 0, 120.0, "the first points in InfluxDB")
    broker.stop()
    at_stop = counted()
    time.sleep(OUTAGE_S)
    during = counted()
    broker.start()
    print(f"\nbroker stopped with {at_stop:,} of {OUTAGE_ROWS:,} counted, {during:,} after {OUTAGE_S:.0f} s down")
    assert at_stop < OUTAGE_ROWS, "the import finished before the outage: nothing was tested"
    assert_exact_in_influxdb(private_influxdb2, expected)
    wait_until(lambda: (spool / "done" / "fishers.csv").exists(), 120.0, "the file moved to done/")
    assert "Metric buffer overflow" not in agent.log_text() and "dropped" not in agent.log_text().lower()
    assert agent.running and consumer.running
