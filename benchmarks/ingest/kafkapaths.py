"""i-j: csv2lp -> Apache Kafka -> Telegraf's kafka_consumer (the shipped kafka-consumer.conf) -> InfluxDB 2.

| key | letter | what runs |
|---|---|---|
| kafka | i | `csv2lp FILE --kafka-brokers ...` into a 4-partition topic; one Telegraf consumer |
| kafka-2 | i | the same, two Telegraf consumers in one group (each holds 2 partitions) |
| kafka-backlog | j | every row produced while InfluxDB is down; then influxd starts: the backlog's drain |

Each path gets a broker of its own (tests/support/kafka.py: one KRaft JVM, -Xmx512m, a
fresh log folder), as it gets a fresh InfluxDB, so the broker's CPU seconds and peak RSS
are that path's. The consumers run the shipped file with only the numbers added
(configs.kafka_consumer_config) and are up, in a stable group, each holding partitions,
before the clock starts. The clock of i starts with the csv2lp command (start-up,
reading, converting and producing are in it, as in h); j's starts with influxd's start,
after csv2lp has had every line acknowledged by the broker. Done when InfluxDB counts
every row, after the consumers' metrics_written says they wrote them all.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .. import peers
from ..machine import ProcessUsage
from . import configs
from .inputs import Inputs
from .paths import PathRun, TelegrafNumbers, _finish, _record, _usage
from .servers import Target
from .watch import Progress, Watching, until_counted

from support.influxdb import free_loopback_port  # noqa: E402  (tests/ is on sys.path: servers.py)
from support.kafka import KafkaBroker  # noqa: E402
from support.telegraf import TelegrafProcess, find_telegraf_binary  # noqa: E402

PARTITIONS = 4  # two consumers hold two each
TOPIC = "movebank"
GROUP = "csv2lp-benchmark"
GROUP_TIMEOUT_S = 90.0  # the consumers up, in a stable group, holding every partition
PRODUCE_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class KafkaVariant:
    key: str
    consumers: int = 1
    backlog: bool = False  # produce everything while influxd is down, time from its start


KAFKA_VARIANTS = {
    "kafka": KafkaVariant("kafka"),
    "kafka-2": KafkaVariant("kafka-2", consumers=2),
    "kafka-backlog": KafkaVariant("kafka-backlog", backlog=True),
}


class GroupNumbers:
    """Every consumer's numbers for its influxdb_v2 output, summed: the group's metrics_written."""

    def __init__(self, ports: list[int], expected: int, progress: Progress) -> None:
        self.each = [TelegrafNumbers(port, "influxdb_v2", expected, Progress()) for port in ports]
        self.expected, self.progress = expected, progress

    def poll(self) -> bool:
        answered = [numbers.poll() for numbers in self.each]
        written = sum(numbers.written for numbers in self.each)
        self.progress.advanced(written)
        if written >= self.expected:
            self.progress.ack()
        return all(answered)

    def as_dict(self, logs: list[str]) -> dict:
        parts = [numbers.as_dict(log) for numbers, log in zip(self.each, logs)]
        return {"metrics_dropped": sum(p["metrics_dropped"] for p in parts),
                "overflow_logged": sum(p["overflow_logged"] for p in parts),
                "peak_buffer_size": max(p["peak_buffer_size"] for p in parts),
                "buffer_limit": parts[0]["buffer_limit"],
                "metrics_written": sum(p["metrics_written"] for p in parts),
                "per_consumer": parts}


def group_assignment(broker: KafkaBroker) -> dict[str, list[int]]:
    """{member's client id and host: partitions} from the group coordinator; {} until the group is stable."""
    from confluent_kafka import ConsumerGroupState, KafkaException

    admin = broker.admin()  # kept until the answer: a client collected meanwhile never answers
    try:
        described = admin.describe_consumer_groups([GROUP], request_timeout=10)[GROUP].result(timeout=15)
    except (KafkaException, TimeoutError):
        return {}  # the coordinator still loading __consumer_offsets, or moving: ask again
    if described.state != ConsumerGroupState.STABLE:
        return {}
    return {f"{member.client_id} {member.member_id[-8:]}": sorted(tp.partition for tp in member.assignment.topic_partitions)
            for member in described.members}


def _wait_for_group(broker: KafkaBroker, numbers: GroupNumbers, consumers: list[TelegrafProcess],
                    members: int) -> dict[str, list[int]]:
    deadline = time.monotonic() + GROUP_TIMEOUT_S
    while True:
        assignment = group_assignment(broker)
        held = [p for partitions in assignment.values() for p in partitions]
        if numbers.poll() and len(assignment) == members and all(assignment.values()) and \
                sorted(held) == list(range(PARTITIONS)):
            return assignment
        for consumer in consumers:
            if not consumer.running:
                raise RuntimeError(f"a Telegraf consumer exited: {consumer.log_tail(600)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the consumer group was not stable with {members} member(s) holding all "
                               f"{PARTITIONS} partitions after {GROUP_TIMEOUT_S:.0f} s: {assignment}")
        time.sleep(0.25)


def _consumers(count: int, ports: list[int], broker: KafkaBroker, target: Target, workdir: Path,
               watching: Watching) -> tuple[list[TelegrafProcess], list[str]]:
    binary = find_telegraf_binary()
    if binary is None:
        raise RuntimeError("no Telegraf binary: run .ci/install-telegraf")
    env = {**target.telegraf_env(), "KAFKA_BROKERS": broker.bootstrap_servers, "KAFKA_TOPIC": TOPIC,
           "KAFKA_GROUP": GROUP}
    made = [configs.kafka_consumer_config(port) for port in ports[:count]]
    processes = [TelegrafProcess(binary, config.text, workdir / f"consumer-{n + 1}", env=env,
                                 max_lifetime=watching.timeout + PRODUCE_TIMEOUT_S)
                 for n, config in enumerate(made)]
    return processes, made[0].edits


def _csv2lp_command(inputs: Inputs, broker: KafkaBroker, workdir: Path) -> list[str]:
    return [sys.executable, "-m", "converter", str(inputs.csv), "--preset", "movebank", "--precision", "ns",
            "--kafka-brokers", broker.bootstrap_servers, "--kafka-topic", TOPIC, "--quiet",
            "--summary-json", str(workdir / "csv2lp.summary.json"), "--rejects", str(workdir / "rejects.csv")]


def _produce(command: list[str], workdir: Path, progress: Progress | None, launched: list[peers.Launched]) -> None:
    """Run csv2lp to its end; a failure is the path's failure (`progress.failed`), or raised without one."""
    try:
        result = peers.launch(command, workdir, "csv2lp")
    except Exception as exc:  # noqa: BLE001
        failure = f"cannot start csv2lp: {exc}"
    else:
        launched.append(result)
        if result.returncode == 0:
            return
        tail = result.stderr.read_text(errors="replace").strip().splitlines()[-2:]
        failure = f"csv2lp exited {result.returncode}: {' / '.join(tail)}"
    if progress is None:
        raise RuntimeError(failure)
    progress.failed = failure


def run_kafka(run: PathRun, target: Target, inputs: Inputs, workdir: Path, *, variant: KafkaVariant,
              watching: Watching) -> None:
    if target.kind != "v2":
        raise RuntimeError("telegraf/kafka-consumer.conf writes to InfluxDB 2 (outputs.influxdb_v2) only")
    workdir.mkdir(parents=True, exist_ok=True)
    broker = KafkaBroker(workdir / "kafka")
    consumers: list[TelegrafProcess] = []
    try:
        broker.start()
        broker.create_topic(TOPIC, partitions=PARTITIONS)
        ports = [free_loopback_port() for _ in range(variant.consumers)]
        consumers, edits = _consumers(variant.consumers, ports, broker, target, workdir, watching)
        progress = Progress()
        numbers = GroupNumbers(ports, inputs.rows, progress)
        for consumer in consumers:
            consumer.start()
        assignment = _wait_for_group(broker, numbers, consumers, variant.consumers)
        command = _csv2lp_command(inputs, broker, workdir)
        run.settings = [" ".join(["csv2lp", "FILE", *command[4:8], "--kafka-brokers", "B", "--kafka-topic", TOPIC]),
                        f"topic {TOPIC!r}: {PARTITIONS} partitions; broker {broker.bootstrap_servers} (Kafka, -Xmx512m)",
                        f"{variant.consumers} consumer(s) in group {GROUP!r}: " +
                        "; ".join(f"{member} holds {partitions}" for member, partitions in assignment.items()),
                        *edits]
        roles: dict[str, int | None] = {"broker": broker.process.pid if broker.process else None}
        roles.update({("telegraf" if n == 0 else f"telegraf-{n + 1}"): c.pid for n, c in enumerate(consumers)})
        launched: list[peers.Launched] = []
        if variant.backlog:
            started, before = _backlog(run, target, command, workdir, launched, roles)
            thread = None
        else:
            before = _usage({**roles, "influxd": target.pid})
            started = time.monotonic()
            thread = threading.Thread(target=_produce, args=(command, workdir, progress, launched), name="csv2lp")
            thread.start()
        _watch(run, consumers, target, inputs, numbers, progress, started, before, roles, watching)
        if thread is not None:
            thread.join(timeout=PRODUCE_TIMEOUT_S)
        if launched:
            run.processes["csv2lp"] = {"cpu_seconds": round(launched[0].cpu_seconds, 2),
                                       "peak_rss_mb": round(launched[0].max_rss_kb / 1024, 1)}
    finally:
        for consumer in consumers:
            consumer.close()
        broker.close()


def _backlog(run: PathRun, target: Target, command: list[str], workdir: Path, launched: list[peers.Launched],
             roles: dict[str, int | None]) -> tuple[float, dict[str, ProcessUsage | None]]:
    """influxd stopped, every row produced (csv2lp waits for each acknowledgement), then influxd started:
    the clock starts there. The consumer meanwhile holds max_undelivered_messages and retries."""
    target.server.stop()
    began = time.monotonic()
    _produce(command, workdir, None, launched)
    produced = time.monotonic() - began
    run.settings.append(f"backlog: influxd stopped; csv2lp had every line acknowledged by Kafka in "
                        f"{produced:.1f} s ({launched[0].cpu_seconds:.1f} CPU s); then influxd started")
    before = _usage(roles)  # influxd's CPU: all of the new process's
    started = time.monotonic()
    target.server.start()
    return started, before


def _watch(run: PathRun, consumers: list[TelegrafProcess], target: Target, inputs: Inputs, numbers: GroupNumbers,
           progress: Progress, started: float, before: dict, roles: dict[str, int | None], watching: Watching) -> None:
    after: dict[str, ProcessUsage | None] = {}

    def on_poll() -> None:
        numbers.poll()
        for consumer in consumers:
            if not consumer.running:
                progress.failed = f"a Telegraf consumer exited: {consumer.log_tail(600)}"

    counted = until_counted(target, "event_id", inputs.rows, started, progress, **watching.options(), on_poll=on_poll,
                            before_restart=lambda: after.update(_usage({**roles, "influxd": target.pid})))
    after = after or _usage({**roles, "influxd": target.pid})
    for each in numbers.each:
        each.settle()
    for consumer in consumers:
        consumer.stop()
    _record(run, before, after)
    logs = [consumer.log_text() for consumer in consumers]
    run.telegraf = numbers.as_dict(logs)
    _finish(run, counted, target, inputs, "event_id")
    if run.error is None and (run.telegraf["metrics_dropped"] or run.telegraf["overflow_logged"]):
        run.error = f"Telegraf dropped metrics: {run.telegraf}"
