"""The consumer side's faults, with csv2lp producing: InfluxDB away and a consumer killed while it holds messages.

csv2lp --kafka-brokers feeds a 4-partition topic at a set pace; two Telegrafs run the
shipped telegraf/kafka-consumer.conf in one group (plus Telegraf's own write numbers on a
loopback prometheus_client page, the only addition) and write into InfluxDB 2.8.0.
Mid-stream InfluxDB is stopped for OUTAGE_S (60 s; 5 minutes with CSV2LP_LONG_OUTAGE=1).
While it is away both consumers fill their buffers up to max_undelivered_messages and
stop reading; the rest of the file waits in Kafka. Then consumer-a, its buffer not empty
(messages read, not written, offsets not committed), is killed with SIGKILL and started
again: its partitions must be read again from the last committed offsets. InfluxDB comes
back; every series must count exactly what `csv2lp convert` writes, the group's offsets
must reach the end, and Telegraf's own numbers must show no metric dropped. The rebalance
when consumer-a comes back makes consumer-b read its partitions again from the last commit
while the first copies still wait in its buffer: its buffer must stay under the limit
(seen: 92,049 of 100,000, which is why the shipped in-flight product is half the limit).

What fails here: a consumer config whose max_undelivered_messages x lines per message
exceeds metric_buffer_limit (the buffer overflows while InfluxDB is down and a later
commit skips the dropped messages: metrics_dropped > 0 and points missing); offsets
committed on read instead of on delivery (the killed consumer's buffer would be lost);
a Telegraf that does not resume writing once InfluxDB is back.
"""

from __future__ import annotations

import os
import re
import time

import pytest
from support.csv2lp_kafka import PacedInput, acknowledged_lines, finish, start_paced
from support.kafka import fresh_topic_name
from support.kafka_fleet import (PARTITIONS, MEASUREMENT, assert_exact_in_influxdb, consumers_holding_partitions,
                                 errors_in, generated_movebank, lag, output_numbers)
from support.telegraf import BUFFER_OVERFLOW_PATTERN, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.telegraf, pytest.mark.influxdb2, pytest.mark.slow]

LONG = bool(os.environ.get("CSV2LP_LONG_OUTAGE"))
OUTAGE_S = 300.0 if LONG else 60.0
# More than both consumers may hold (2 x 50 messages x 1,000 lines): a backlog stays in Kafka.
ROWS = 150_000
KILLED_DOWN_S = 5.0
EXPECTED_ERROR = re.compile(r"E! \[outputs\.influxdb_v2\]|E! \[agent\] Error writing to outputs\.influxdb_v2|"
                            r"E! \[inputs\.kafka_consumer\] Error in plugin: channel: kafka: error while consuming "
                            r"\S+: context canceled$")


def buffered(process) -> int:
    """Metrics in the consumer's influxdb_v2 buffer (read from the broker, not written yet)."""
    return int(output_numbers(process.metrics_url)["buffer_size"])


def test_influxdb_away_and_a_consumer_killed_holding_messages_lose_nothing(kafka_broker, private_influxdb2,
                                                                          start_telegraf, tmp_path):
    server = private_influxdb2
    csv, expected = generated_movebank(tmp_path, ROWS)
    topic = kafka_broker.create_topic(fresh_topic_name(), partitions=PARTITIONS)
    group, (first, second), _ = consumers_holding_partitions(kafka_broker, topic, server, start_telegraf,
                                                             metrics=True, max_lifetime=OUTAGE_S + 240)
    limit = int(output_numbers(first.metrics_url)["buffer_limit"])

    def counted() -> int:
        return sum(server.count_per_series(measurement=MEASUREMENT).values())

    paced = PacedInput(csv, chunk=256 * 1024, every=0.1)  # ~2.5 MB/s of a 29 MB file
    process = start_paced(["--preset", "movebank", "--kafka-brokers", kafka_broker.bootstrap_servers,
                           "--kafka-topic", topic], paced)
    try:
        wait_until(lambda: counted() > 0, 60.0, "the first points in InfluxDB", poll=0.5)
        server.stop()
        stopped, read_at_stop = time.monotonic(), paced.fraction
        # Consumer-a reads on into its buffer; kill it 10 s into the outage, holding messages it has not written.
        wait_until(lambda: buffered(first), 30.0, "consumer-a holding unwritten metrics", poll=0.5)
        time.sleep(max(0.0, 10.0 - (time.monotonic() - stopped)))
        held = buffered(first)
        dropped_before_kill = output_numbers(first.metrics_url)["metrics_dropped"]
        first.kill()
        time.sleep(KILLED_DOWN_S)
        first.start()
        run = finish(process, paced, timeout=OUTAGE_S + 120)  # Kafka is up: csv2lp finishes meanwhile
        peak = 0
        while time.monotonic() - stopped < OUTAGE_S:
            peak = max(peak, buffered(second))
            time.sleep(1.0)
        lag_in_outage = sum(lag(kafka_broker, topic, group).values())
        server.start()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert read_at_stop < 1.0, "csv2lp had read the whole file before InfluxDB stopped: not mid-stream"
    assert run.returncode == 0 and acknowledged_lines(run.stderr) == ROWS, run.stderr
    back = time.monotonic()
    note = assert_exact_in_influxdb(server, expected, timeout=180.0)
    back = time.monotonic() - back
    print(f"\nInfluxDB stopped at {read_at_stop:.0%} of the input for {OUTAGE_S:.0f} s; consumer-a SIGKILLed "
          f"holding {held:,} unwritten metrics; consumer-b's buffer peaked at {peak:,} of {limit:,}; "
          f"{lag_in_outage} messages uncommitted at the end of the outage; all {ROWS:,} exact "
          f"{back:.1f} s after InfluxDB was back {note}")
    assert 0 < held < limit and peak < limit
    assert lag_in_outage > 0  # the outage held messages back, as it should
    wait_until(lambda: set(lag(kafka_broker, topic, group).values()) == {0}, 60.0, "every offset committed")
    # Telegraf's own numbers: nothing dropped by either consumer (consumer-a since its restart).
    dropped = [output_numbers(c.metrics_url)["metrics_dropped"] for c in (first, second)]
    assert [dropped_before_kill, *dropped] == [0, 0, 0], (dropped_before_kill, dropped)
    for consumer in (first, second):
        assert not re.search(BUFFER_OVERFLOW_PATTERN, consumer.log_text()), consumer.log_tail()
        # The only errors: the writes InfluxDB refused while it was away, and the partition sessions
        # the rebalance cancelled when consumer-a came back ("context canceled").
        unexpected = [line for line in errors_in(consumer) if not EXPECTED_ERROR.search(line)]
        assert unexpected == [], unexpected[:3]
    assert first.running and second.running
