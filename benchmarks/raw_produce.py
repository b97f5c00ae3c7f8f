"""Produce ready-made line-protocol messages to Kafka as fast as the broker takes them: the ceiling.

    python benchmarks/raw_produce.py LINES_FILE BROKERS TOPIC [--message-lines 1000] [--compression lz4]

LINES_FILE is csv2lp's own output for the benchmark's CSV. Before the clock starts, its lines
are grouped by series (the line up to its first unescaped space) and cut into messages of at
most --message-lines lines, keyed by the series: what csv2lp --kafka-brokers sends. The
clock runs from the first produce() to the last acknowledgement, with the producer settings
csv2lp uses (idempotent, acks=all, the same compression, linger and batch size). Prints JSON.
"""

import json
import os
import re
import sys
import time
from collections import defaultdict

from confluent_kafka import Producer

_KEY_END = re.compile(rb"(?<!\\) ")


def messages(path, message_lines):
    by_series = defaultdict(list)
    with open(path, "rb") as handle:
        for line in handle:
            by_series[line[:_KEY_END.search(line).start()]].append(line)
    out = []
    for key, lines in by_series.items():
        for start in range(0, len(lines), message_lines):
            out.append((key, b"".join(lines[start:start + message_lines]), len(lines[start:start + message_lines])))
    return out


def main(argv):
    path, brokers, topic = argv[:3]
    options = dict(zip(argv[3::2], argv[4::2]))
    made = messages(path, int(options.get("--message-lines", 1000)))
    state = {"acked": 0, "failed": 0}

    def delivered(error, message):
        state["failed" if error else "acked"] += 1

    producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True, "acks": "all",
                         "compression.type": options.get("--compression", "lz4"), "linger.ms": 10,
                         "batch.size": 1_000_000, "message.max.bytes": 1_000_512,
                         "queue.buffering.max.kbytes": 16 * 1024, "partitioner": "murmur2_random"})
    started, cpu_before = time.perf_counter(), os.times()
    for key, value, _ in made:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(120)
    seconds = time.perf_counter() - started
    cpu = os.times()
    lines = sum(n for _, _, n in made)
    print(json.dumps({"lines": lines, "messages": len(made), "acked": state["acked"], "failed": state["failed"],
                      "produce_seconds": seconds,
                      # the whole process (librdkafka's threads too) over the produce window only
                      "produce_cpu_seconds": cpu.user + cpu.system - cpu_before.user - cpu_before.system}))
    return 0 if state["acked"] == len(made) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
