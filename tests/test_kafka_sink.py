"""`csv2lp FILE --kafka-brokers ... --kafka-topic ...` against a real Apache Kafka broker.

csv2lp runs as a process (`python -m converter`, this checkout). What the topic holds is
read back with a consumer and compared per series, in order, with what `csv2lp convert`
writes for the same file; every message's key is its series and each series sits in one
partition. The bad inputs of issue 25 (no broker, unknown topic, a message over the
topic's limit, refused credentials, no confluent-kafka) each end in one line, in seconds.
The broker stopped mid-stream (SIGTERM, then SIGKILL) while csv2lp produces: csv2lp says
it waits, holds back the reading, and finishes with every line acknowledged exactly once.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from support.csv2lp_kafka import (
    PacedInput,
    Run,
    assert_exact,
    assert_one_line_error,
    hand_over_stdin,
    kafka_args,
    read_topic,
    reference_lines,
    run_csv2lp,
    start_csv2lp,
)
from support.kafka import KafkaBroker, fresh_topic_name, require_kafka
from support.movebank_gen import generate
from support.server_process import running
from support.telegraf import wait_until

pytestmark = pytest.mark.kafka

PARTITIONS = 3
ROWS = 30_000  # 20 animals, 1,500 fixes each
FAST_S = 20.0  # "in seconds, not minutes": the connect timeout is 10 s
ACKED = re.compile(r"^([\d,]+) lines acknowledged by Kafka in ([\d,]+) message", re.M)
NOT_ACKED = re.compile(r"([\d,]+) lines acknowledged, ([\d,]+) NOT acknowledged")


def number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture(scope="module")
def movebank_csv(tmp_path_factory) -> Path:
    return generate(ROWS, tmp_path_factory.mktemp("kafka-sink") / "fishers.csv")


@pytest.fixture(scope="module")
def reference(movebank_csv, tmp_path_factory) -> dict[bytes, list[bytes]]:
    return reference_lines(movebank_csv, tmp_path_factory.mktemp("kafka-ref") / "fishers.lp")


@pytest.fixture
def topic3(kafka_broker):
    name = kafka_broker.create_topic(fresh_topic_name(), partitions=PARTITIONS)
    yield name
    if kafka_broker.running:
        kafka_broker.delete_topic(name)


# -- the happy path -----------------------------------------------------------------------


def test_a_file_lands_exactly_per_series_keyed_and_stamped_with_the_write_time(kafka_broker, topic3, movebank_csv,
                                                                               reference):
    began_ms = time.time() * 1000
    run = run_csv2lp([str(movebank_csv), *kafka_args(kafka_broker, topic3)])
    ended_ms = time.time() * 1000
    assert run.returncode == 0, run.stderr
    acked = ACKED.search(run.stderr)
    assert acked and number(acked.group(1)) == ROWS, run.stderr
    assert f"{ROWS:,} lines written\n" in run.stderr and "NOT" not in run.stderr

    records = read_topic(kafka_broker, topic3, expected_lines=ROWS)
    assert len(records) == number(acked.group(2))
    assert_exact(records, reference)
    assert max(len(record.lines) for record in records) <= 1_000
    assert len({record.partition for record in records}) == PARTITIONS  # 20 series spread over all 3
    # CreateTime = the write time, never the data's (2011): a topic's time retention counts from it.
    assert {record.timestamp_type for record in records} == {1}
    assert all(began_ms - 1_000 <= record.timestamp_ms <= ended_ms + 1_000 for record in records)


def test_message_lines_and_bytes_cut_the_messages(kafka_broker, kafka_topic, movebank_csv, reference):
    run = run_csv2lp([str(movebank_csv), *kafka_args(kafka_broker, kafka_topic, "--kafka-message-lines", "300",
                                                      "--kafka-message-bytes", "20000")])
    assert run.returncode == 0, run.stderr
    records = read_topic(kafka_broker, kafka_topic, expected_lines=ROWS)
    assert_exact(records, reference)
    assert max(len(record.lines) for record in records) <= 300
    assert max(len(record.value) + len(record.key) for record in records) <= 20_000
    assert max(len(record.value) + len(record.key) for record in records) > 15_000  # cut by bytes, not lines


# -- bad inputs: one line, in seconds -----------------------------------------------------


def test_no_broker_at_the_address_is_one_line_in_seconds(movebank_csv):
    from support.influxdb import free_loopback_port

    address = f"127.0.0.1:{free_loopback_port()}"
    run = run_csv2lp([str(movebank_csv), *kafka_args(address, "lines")])
    assert_one_line_error(run, f"cannot reach any Kafka broker of --kafka-brokers {address}", "Connection refused")
    assert run.seconds < FAST_S


def test_an_unknown_topic_is_one_line_that_says_how_to_create_it(kafka_broker, movebank_csv):
    run = run_csv2lp([str(movebank_csv), *kafka_args(kafka_broker, "no-such-topic")])
    assert_one_line_error(run, "topic 'no-such-topic' does not exist", "auto.create.topics.enable=false",
                          "kafka-topics.sh")
    assert run.seconds < FAST_S
    assert "no-such-topic" not in kafka_broker.topics()


def test_message_bytes_over_the_topics_limit_is_refused_before_the_first_row(kafka_broker, movebank_csv):
    topic = kafka_broker.create_topic(fresh_topic_name(), config={"max.message.bytes": "8192"})
    run = run_csv2lp([str(movebank_csv), *kafka_args(kafka_broker, topic, "--kafka-message-bytes", "9000")])
    assert_one_line_error(run, "--kafka-message-bytes 9,000 is more than topic", "max.message.bytes is 8,192",
                          "give at most 7,680")
    assert run.seconds < FAST_S
    # Without the option the messages are cut to fit: everything arrives.
    run = run_csv2lp([str(movebank_csv), *kafka_args(kafka_broker, topic)])
    assert run.returncode == 0, run.stderr
    records = read_topic(kafka_broker, topic, expected_lines=ROWS)
    assert sum(len(record.lines) for record in records) == ROWS
    assert max(len(record.value) + len(record.key) for record in records) <= 8192 - 512


def test_a_line_larger_than_any_message_stops_the_run_with_exact_counts(kafka_broker, tmp_path):
    topic = kafka_broker.create_topic(fresh_topic_name(), config={"max.message.bytes": "4096"})
    rows = ["time,station,note"] + [f"2024-01-01T00:{m:02d}:00Z,s{m % 3},short" for m in range(40)]
    rows[21] = f"2024-01-01T00:20:00Z,s2,{'x' * 5000}"  # one line of ~5 KB among 40
    path = tmp_path / "notes.csv"
    path.write_text("\n".join(rows) + "\n")
    run = run_csv2lp([str(path), "-m", "notes", "-t", "station", "-f", "note:string", "--time-column", "time",
                      "--kafka-brokers", kafka_broker.bootstrap_servers, "--kafka-topic", topic])
    line = assert_one_line_error(run, "does not fit in one Kafka message", "max.message.bytes")
    acknowledged, missing = (number(n) for n in NOT_ACKED.search(line).groups())
    assert acknowledged + missing == 40 and missing >= 1
    records = read_topic(kafka_broker, topic, timeout=10) if acknowledged else []
    assert sum(len(record.lines) for record in records) == acknowledged  # the count is what the topic holds


def test_without_confluent_kafka_the_error_says_how_to_install_it(movebank_csv, tmp_path):
    shadow = tmp_path / "shadow" / "confluent_kafka"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('confluent_kafka is not installed (test shadow)')\n")
    run = run_csv2lp([str(movebank_csv), *kafka_args("127.0.0.1:9", "lines")],
                     env={"PYTHONPATH": f"{Path(__file__).parents[1]}:{shadow.parent}"})
    assert_one_line_error(run, "confluent-kafka", "pip install 'csv2lp[kafka]'")


def test_kafka_options_without_brokers_or_with_another_output_are_usage_errors(movebank_csv):
    run = run_csv2lp([str(movebank_csv), "--kafka-topic", "x"])
    assert run.returncode == 2 and "--kafka-topic only goes with --kafka-brokers" in run.stderr
    run = run_csv2lp([str(movebank_csv), "--kafka-brokers", "127.0.0.1:9", "--kafka-topic", "x", "-o", "x.lp"])
    assert run.returncode == 2 and "cannot be combined" in run.stderr
    run = run_csv2lp([str(movebank_csv), "--kafka-brokers", "127.0.0.1:9"])
    assert run.returncode == 2 and "needs --kafka-topic" in run.stderr


# -- SASL and a broker that creates topics ------------------------------------------------

USER, PASSWORD = "csv2lp-agent", "s3cret-Pa55word"


@pytest.fixture(scope="module")
def sasl_broker():
    """A broker of this module's own: PLAINTEXT and SASL_PLAINTEXT (PLAIN, one user), topics created on first use."""
    from support.influxdb import free_loopback_port

    lib, java = require_kafka()
    sasl_port = free_loopback_port()
    broker = KafkaBroker(lib=lib, java=java, auto_create_topics=True)
    broker.sasl_port = sasl_port
    broker.extra_properties.update({
        "listeners": f"PLAINTEXT://127.0.0.1:{broker.port},SASL_PLAINTEXT://127.0.0.1:{sasl_port},"
                     f"CONTROLLER://127.0.0.1:{broker.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker.port},SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config":
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_{USER}="{PASSWORD}";',
        "num.partitions": 2,
    })
    yield from running(broker)


def sasl_env(password: str) -> dict[str, str]:
    return {"KAFKA_SASL_USERNAME": USER, "KAFKA_SASL_PASSWORD": password, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}


def test_a_wrong_password_is_one_line_without_the_password(sasl_broker, movebank_csv):
    topic = sasl_broker.create_topic(fresh_topic_name())
    address = f"127.0.0.1:{sasl_broker.sasl_port}"
    run = run_csv2lp([str(movebank_csv), *kafka_args(address, topic)], env=sasl_env("wrong-Pa55word"))
    assert_one_line_error(run, "refused to sign csv2lp in", "$KAFKA_SASL_USERNAME")
    assert "wrong-Pa55word" not in run.stderr
    assert run.seconds < FAST_S
    # The right one from the environment (never argv): every line arrives.
    run = run_csv2lp([str(movebank_csv), *kafka_args(address, topic)], env=sasl_env(PASSWORD))
    assert run.returncode == 0, run.stderr
    assert number(ACKED.search(run.stderr).group(1)) == ROWS


def test_a_broker_that_creates_topics_on_first_use_gets_one_and_says_so(sasl_broker, movebank_csv, reference):
    topic = fresh_topic_name()
    run = run_csv2lp([str(movebank_csv), *kafka_args(sasl_broker, topic)])
    assert run.returncode == 0, run.stderr
    assert f"the broker created topic '{topic}' on first use, with 2 partitions" in run.stderr
    assert_exact(read_topic(sasl_broker, topic, expected_lines=ROWS), reference)


# -- the broker away mid-stream -------------------------------------------------------------


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def stream_through_an_outage(broker: KafkaBroker, topic: str, csv: Path, stop, *, outage_s: float,
                             restart: bool = True, extra: tuple[str, ...] = ()) -> tuple[Run, dict]:
    """csv2lp reads `csv` from a slow pipe; once a third of it is in the pipe and the broker holds
    some of it, `stop()` ends the broker, which is started again `outage_s` later (unless not
    `restart`). Returns the run and what was seen meanwhile."""
    # 10 MB/s, faster than the outage could hold: only the sink's bound stops the reading.
    paced = PacedInput(csv, chunk=512 * 1024, every=0.05)
    process = start_csv2lp(["-", *kafka_args(broker, topic, *extra)], stdin=subprocess.PIPE)
    paced.start(hand_over_stdin(process))
    seen: dict = {"peak_rss_kb": 0}
    try:
        paced.wait_for(0.33)
        # Mid-stream means the broker already holds some of it: on a loaded box csv2lp may still be
        # starting when a third of the input is in the pipe.
        wait_until(lambda: broker.records_in(topic) > 0, 60.0, f"records in {topic}")
        stop()
        seen["stopped_at"], seen["bytes_at_stop"] = paced.fraction, paced.written
        down_until = time.monotonic() + outage_s
        while time.monotonic() < down_until:
            seen["peak_rss_kb"] = max(seen["peak_rss_kb"], rss_kb(process.pid))
            time.sleep(0.2)
        seen["read_while_down"], seen["bytes_read_while_down"] = paced.fraction, paced.written - seen["bytes_at_stop"]
        if restart:
            broker.start()
        stdout, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        paced.join()
    return Run(process.returncode, stdout, stderr, 0.0), seen


# What csv2lp may still read of big_csv once the broker is away: its unacknowledged messages
# (up to 16 MB), the lines converted but not yet handed to the producer, the 2 MiB blocks read
# ahead and being encoded, the pipe. Measured: 16-23 MB of this CSV in four runs. 32 MB leaves
# room above that and stays below what is left of the ~78 MB input after a stop anywhere before
# 59 % of it (a graceful stop under load once ended at 70 %: then this check cannot tell a bound
# from none, and the peak RSS below is what shows the bound).
HELD_BACK_BYTES = 32 * 1024 * 1024


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    # ~78 MB of CSV: well beyond what csv2lp holds while the broker is away (HELD_BACK_BYTES), so
    # a sink without a bound would read it all while the broker is away.
    return generate(400_000, tmp_path_factory.mktemp("kafka-outage") / "fishers.csv")


@pytest.fixture(scope="module")
def big_reference(big_csv, tmp_path_factory) -> dict[bytes, list[bytes]]:
    return reference_lines(big_csv, tmp_path_factory.mktemp("kafka-outage-ref") / "fishers.lp")


def test_the_broker_stopped_or_killed_mid_stream_csv2lp_waits_and_finishes_exact(private_kafka_broker, big_csv,
                                                                                  big_reference):
    broker = private_kafka_broker
    total = sum(len(lines) for lines in big_reference.values())
    for how, stop in (("SIGTERM", broker.stop), ("SIGKILL", broker.kill)):
        topic = broker.create_topic(fresh_topic_name(), partitions=PARTITIONS)
        run, seen = stream_through_an_outage(broker, topic, big_csv, stop, outage_s=12.0)
        print(f"\n{how}: stopped at {seen['stopped_at']:.0%} of the input, read {seen['read_while_down']:.0%} "
              f"by the restart, csv2lp peak RSS {seen['peak_rss_kb'] / 1024:.0f} MB while the broker was away")
        assert run.returncode == 0, run.stderr
        assert re.search(r"^csv2lp: warning: Kafka has acknowledged nothing for \d+ s", run.stderr, re.M), run.stderr
        assert "Kafka acknowledges again after" in run.stderr
        assert number(ACKED.search(run.stderr).group(1)) == total
        # The reading was held back while the broker was away: by at most what the sink queues and
        # the blocks between reader and sink hold, not by the rest of the input. (Not "the input was
        # not all read": a stop late in the input, on a loaded box, leaves less than that bound.)
        assert seen["bytes_read_while_down"] < HELD_BACK_BYTES, seen
        assert seen["peak_rss_kb"] < 400 * 1024
        assert_exact(read_topic(broker, topic, expected_lines=total), big_reference)


def test_a_broker_away_past_the_timeout_ends_the_run_with_the_exact_count(private_kafka_broker, big_csv):
    broker = private_kafka_broker
    topic = broker.create_topic(fresh_topic_name(), partitions=PARTITIONS)
    run, _ = stream_through_an_outage(broker, topic, big_csv, broker.stop, outage_s=0.0, restart=False,
                                      extra=("--kafka-timeout", "6"))
    line = assert_one_line_error(run, "not acknowledged within --kafka-timeout 6 s")
    acknowledged, missing = (number(n) for n in NOT_ACKED.search(line).groups())
    assert missing > 0 and acknowledged > 0
    print(f"\n--kafka-timeout 6 with the broker gone: {acknowledged:,} acknowledged, {missing:,} not; stderr:\n"
          f"{run.stderr}")
    # The summary says the same numbers as the error: converted = acknowledged + not acknowledged.
    assert f"{acknowledged + missing:,} lines converted: {acknowledged:,} written (confirmed by the server), " \
           f"{missing:,} NOT confirmed" in run.stderr, run.stderr
    broker.start()
    records = read_topic(broker, topic, expected_lines=acknowledged, timeout=30)
    held = [line for record in records for line in record.lines]
    # Every acknowledged line is in the topic, once. A stopping broker may also have stored messages
    # whose answers it never sent (seen on a loaded box: 43,097 held, 41,000 acknowledged), so the
    # topic may hold more, but never more than was converted.
    assert acknowledged <= len(held) <= acknowledged + missing, (acknowledged, len(held), missing)
    assert len(set(held)) == len(held), "a line is in the topic twice"
