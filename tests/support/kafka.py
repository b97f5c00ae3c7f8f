"""A real Apache Kafka broker for tests: the jars fetched by .ci/install-kafka, one JVM, on loopback.

Single-node KRaft: one process is broker and controller (`process.roles=broker,controller`),
on two free 127.0.0.1 ports, its log folder in a temp dir. Every replication factor is 1
(one broker can hold no more) and group.initial.rebalance.delay.ms is 0, so a consumer
group gets its partitions at once instead of after 3 s. Topics are not created on first
use unless `auto_create_topics=True`: a test of "unknown topic" needs the broker to refuse.
Retention stays at Kafka's default (7 days, by record timestamp): records stamped with
years-old times are deleted within seconds, as on a real broker (REFERENCE.md).

The folder is formatted once (kafka.tools.StorageTool) on the first start; `stop()` then
`start()` or `restart()` (SIGTERM, a clean shutdown) and `kill()` then `start()` (SIGKILL,
a crash) run the same broker on the same ports and data, for fault tests. Every wait is
bounded; every broker a fixture starts is stopped by its finalizer, also when a test fails.

Clients are confluent-kafka's (librdkafka); `client_config()` gives the bootstrap address
and routes librdkafka's log lines to Python logging (pytest shows them with a failure).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from support.influxdb import free_loopback_port
from support.server_process import ServerProcess, running

INSTALL_SCRIPT = ".ci/install-kafka"
# The same default and variable as .ci/install-kafka.
KAFKA_VERSION = os.environ.get("CSV2LP_KAFKA_VERSION") or "4.4.0"
DEFAULT_BIN_DIR = Path.home() / ".cache" / "csv2lp-bin"
MIN_JAVA = 17  # Kafka 4.x brokers need Java 17+

# Generous: a JVM start on 2 loaded cores. Quiet, the broker answers metadata in ~4 s.
START_TIMEOUT_S = 90.0
# A clean shutdown of the single node takes a few seconds; SIGKILL after this.
STOP_TIMEOUT_S = 30.0
KILL_TIMEOUT_S = 10.0
TOOL_TIMEOUT_S = 60.0
ADMIN_TIMEOUT_S = 30.0
JAVA_HEAP = "-Xmx512m"

# StorageTool random-uuid prints a base64url UUID without padding: 22 characters.
CLUSTER_ID = re.compile(r"[A-Za-z0-9_-]{22}")

CLIENT_LOG = logging.getLogger("support.kafka.librdkafka")

# log4j2 configurations (properties format: log4j-core reads it without extra jars).
# The tools log to stderr: on stdout a log line lands before random-uuid's answer, and
# `format -t` would take that line as the cluster id (REFERENCE.md).
TOOLS_LOG4J2 = """\
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = STDERR
"""
# The broker logs INFO to stdout, which ServerProcess appends to kafka.log; the config dumps
# (2,000+ lines per start, from AbstractConfig) are left out, its warnings are not.
BROKER_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = STDOUT
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
"""


class KafkaBrokerError(RuntimeError):
    """The broker could not be installed, formatted, started or asked; the message says why."""


def find_kafka_lib() -> Path | None:
    """The broker's jar folder, `$CSV2LP_BIN_DIR/kafka-<version>/lib`, if .ci/install-kafka completed it."""
    home = Path(os.environ.get("CSV2LP_BIN_DIR") or DEFAULT_BIN_DIR) / f"kafka-{KAFKA_VERSION}"
    lib = home / "lib"
    complete = (home / "kafka.stamp").is_file() and (lib / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()
    return lib if complete else None


def java_major(java: Path) -> int | None:
    """The major version `java -version` reports (17 for "17.0.15"), None if it does not run."""
    try:
        done = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', done.stderr)
    return int(match.group(1)) if match else None


def find_java() -> Path | None:
    """$JAVA_HOME/bin/java, else `java` on PATH, if it is Java 17 or newer."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(on_path))
    for java in candidates:
        if java.is_file() and os.access(java, os.X_OK) and (java_major(java) or 0) >= MIN_JAVA:
            return java
    return None


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class KafkaBroker(ServerProcess):
    """One KRaft broker+controller JVM with its own ports, config and log folder (`root/data`)."""

    program = "kafka"
    error = KafkaBrokerError
    stop_signal = signal.SIGTERM  # Kafka's shutdown hook closes the logs cleanly
    stop_timeout = STOP_TIMEOUT_S

    def __init__(
        self,
        root: Path | None = None,
        *,
        lib: Path | None = None,
        java: Path | None = None,
        auto_create_topics: bool = False,
        properties: Mapping[str, object] | None = None,
    ) -> None:
        found_lib = lib or find_kafka_lib()
        if found_lib is None:
            raise KafkaBrokerError(f"no Kafka {KAFKA_VERSION} jars: run {INSTALL_SCRIPT}")
        found_java = java or find_java()
        if found_java is None:
            raise KafkaBrokerError(f"no Java {MIN_JAVA}+ for the Kafka broker (set JAVA_HOME or put java on PATH)")
        super().__init__(root, prefix="kafka-")
        self.lib = Path(found_lib)
        self.java = Path(found_java)
        self.auto_create_topics = auto_create_topics
        self.extra_properties = dict(properties or {})
        self.port = free_loopback_port()
        self.controller_port = free_loopback_port()
        while self.controller_port == self.port:
            self.controller_port = free_loopback_port()
        self.data_dir = self.root / "data"
        self.config_path = self.root / "server.properties"
        self.cluster_id: str | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return self.bootstrap_servers

    @property
    def url(self) -> str:  # ServerProcess's; Kafka speaks no HTTP
        return f"kafka://{self.bootstrap_servers}"

    # -- config ----------------------------------------------------------------------

    def server_properties(self) -> dict[str, object]:
        """The broker's settings: single-node KRaft on loopback, replication factor 1 everywhere."""
        properties: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            # One broker: every internal topic with one replica, or it is never created.
            "offsets.topic.replication.factor": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "default.replication.factor": 1,
            "min.insync.replicas": 1,
            # __consumer_offsets: 50 partitions by default, created at the first group's
            # first request; 5 come up faster on a loaded machine and are as correct.
            "offsets.topic.num.partitions": 5,
            # A new consumer group gets its partitions at once (default: after 3 s).
            "group.initial.rebalance.delay.ms": 0,
            "auto.create.topics.enable": "true" if self.auto_create_topics else "false",
            "num.partitions": 1,  # for auto-created topics
        }
        properties.update(self.extra_properties)
        return properties

    def _write_configs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("".join(f"{key}={value}\n" for key, value in self.server_properties().items()))
        (self.root / "tools-log4j2.properties").write_text(TOOLS_LOG4J2)
        (self.root / "broker-log4j2.properties").write_text(BROKER_LOG4J2)

    def _java(self, log_config: str, main_class: str, *args: str, heap: str | None = None) -> list[str]:
        heap_args = [heap] if heap else []
        return [str(self.java), *heap_args, f"-Dlog4j2.configurationFile={self.root / log_config}",
                "-cp", f"{self.lib}/*", main_class, *args]

    def storage_tool(self, *args: str) -> str:
        """Run kafka.tools.StorageTool; its stdout (its log lines go to stderr). Raises on failure."""
        argv = self._java("tools-log4j2.properties", "kafka.tools.StorageTool", *args)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, cwd=self.root,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as timeout:
            raise KafkaBrokerError(
                f"StorageTool {' '.join(args)} did not finish in {TOOL_TIMEOUT_S:.0f} s") from timeout
        if done.returncode != 0:
            raise KafkaBrokerError(f"StorageTool {' '.join(args)} exited with status {done.returncode}\n"
                                   f"stdout: {done.stdout.strip()}\nstderr: {done.stderr.strip()[-2000:]}")
        return done.stdout

    @property
    def formatted(self) -> bool:
        return (self.data_dir / "meta.properties").is_file()

    def format(self) -> str:
        """Give the log folder a new cluster id and the bootstrap metadata (once); return the id."""
        if self.formatted:
            raise KafkaBrokerError(f"{self.data_dir} is already formatted")
        answer = self.storage_tool("random-uuid").strip()
        # Anything but one 22-character id (a log line, two lines) must not become the cluster id.
        if not CLUSTER_ID.fullmatch(answer):
            raise KafkaBrokerError(f"StorageTool random-uuid printed {answer!r}, not a 22-character cluster id")
        self.storage_tool("format", "-t", answer, "-c", str(self.config_path))
        meta = (self.data_dir / "meta.properties").read_text()
        if f"cluster.id={answer}" not in meta.splitlines():
            raise KafkaBrokerError(f"meta.properties does not record cluster id {answer}:\n{meta}")
        self.cluster_id = answer
        return answer

    # -- lifecycle -------------------------------------------------------------------

    def start(self, *, timeout: float = START_TIMEOUT_S) -> None:
        """Format on the first start, start the JVM, wait until it answers metadata as broker 1."""
        self._refuse_if_running()
        self._write_configs()
        if not self.formatted:
            self.format()
        argv = self._java("broker-log4j2.properties", "kafka.Kafka", str(self.config_path), heap=JAVA_HEAP)
        with open(self.log_path, "ab") as log:
            log.write(f"=== csv2lp test: start at {time.time():.3f} ===\n".encode())
        began = self._spawn(argv, env=os.environ, cwd=self.root, ready=self._answers_metadata,
                            waiting_for=f"answer metadata at {self.bootstrap_servers}", timeout=timeout)
        self.last_start_seconds = time.monotonic() - began

    def restart(self) -> None:
        """A clean stop (SIGTERM), then a start on the same ports and data."""
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL at once: a crash. What the broker had acknowledged is in the page cache and survives."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=KILL_TIMEOUT_S)

    def _answers_metadata(self) -> bool:
        if not _port_open(self.port):  # no client (and no librdkafka connect errors) before the port listens
            return False
        try:
            metadata = self.admin().list_topics(timeout=2.0)
        except Exception:  # KafkaException: not ready yet
            return False
        return 1 in metadata.brokers and metadata.cluster_id == self._cluster_id_on_disk()

    def _cluster_id_on_disk(self) -> str | None:
        try:
            for line in (self.data_dir / "meta.properties").read_text().splitlines():
                if line.startswith("cluster.id="):
                    return line.split("=", 1)[1]
        except OSError:
            pass
        return None

    # -- clients ---------------------------------------------------------------------

    def client_config(self, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """confluent-kafka settings for this broker: bootstrap address, logs to Python logging; `settings` on top."""
        return {"bootstrap.servers": self.bootstrap_servers, "logger": CLIENT_LOG, **(settings or {})}

    def admin(self) -> Any:
        from confluent_kafka.admin import AdminClient

        return AdminClient(self.client_config())

    def create_topic(self, name: str, partitions: int = 1, *, config: Mapping[str, str] | None = None,
                     timeout: float = ADMIN_TIMEOUT_S) -> str:
        """Create topic `name` (replication factor 1) and wait until every partition has a leader."""
        from confluent_kafka.admin import NewTopic

        admin = self.admin()
        topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config=dict(config or {}))
        futures = admin.create_topics([topic], operation_timeout=timeout, request_timeout=timeout)
        try:
            futures[name].result(timeout=timeout)
        except Exception as error:
            raise KafkaBrokerError(f"could not create topic {name!r} with {partitions} partitions: {error}") from error
        _wait(lambda: self.partition_leaders(name) == {p: 1 for p in range(partitions)}, timeout,
              f"a leader for each of the {partitions} partitions of {name!r}")
        return name

    def partition_leaders(self, name: str) -> dict[int, int] | None:
        """{partition: leader node id} of topic `name` from the broker's metadata, None if it has no such topic."""
        metadata = self.admin().list_topics(topic=name, timeout=10.0)
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            return None
        return {number: partition.leader for number, partition in topic.partitions.items()}

    def records_in(self, name: str) -> int:
        """Records the broker holds in topic `name` (the sum of its partitions' end offsets); 0 if none
        answered in time."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(self.client_config({"group.id": f"csv2lp-watermarks-{uuid.uuid4().hex[:8]}"}))
        try:
            partitions = self.partition_leaders(name) or {}
            return sum(consumer.get_watermark_offsets(TopicPartition(name, p), timeout=5.0, cached=False)[1]
                       for p in partitions)
        except Exception:  # noqa: BLE001 - a broker too busy to answer: "none yet", the caller's wait is bounded
            return 0
        finally:
            consumer.close()

    def topics(self) -> set[str]:
        """The names of the topics the broker has, internal ones (__consumer_offsets) included."""
        return set(self.admin().list_topics(timeout=10.0).topics)

    def delete_topic(self, name: str, *, timeout: float = ADMIN_TIMEOUT_S) -> None:
        admin = self.admin()  # kept until the answer: a client collected meanwhile fails it with _DESTROY
        futures = admin.delete_topics([name], operation_timeout=timeout, request_timeout=timeout)
        futures[name].result(timeout=timeout)


def _wait(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise KafkaBrokerError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def require_kafka() -> tuple[Path, Path]:
    """(jar folder, java) for the broker; fail in CI (a missing install step must not pass quietly), skip elsewhere."""
    lib = find_kafka_lib()
    java = find_java()
    if lib is not None and java is not None:
        return lib, java
    where = os.environ.get("CSV2LP_BIN_DIR") or str(DEFAULT_BIN_DIR)
    if lib is None:
        reason = f"no Kafka {KAFKA_VERSION} broker in {where}: run {INSTALL_SCRIPT} (fetches its jars with Maven)"
    else:
        reason = f"no Java {MIN_JAVA}+ for the Kafka broker: install a JDK (see {INSTALL_SCRIPT})"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def fresh_topic_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """One broker for the whole session (auto-create off); do not stop it in a test."""
    lib, java = require_kafka()
    yield from running(KafkaBroker(lib=lib, java=java))


@pytest.fixture
def kafka_topic(kafka_broker: KafkaBroker) -> Iterator[str]:
    """A fresh topic with one partition on the session broker, deleted afterwards."""
    name = kafka_broker.create_topic(fresh_topic_name())
    try:
        yield name
    finally:
        if kafka_broker.running:
            kafka_broker.delete_topic(name)


@pytest.fixture
def private_kafka_broker() -> Iterator[KafkaBroker]:
    """A broker of the test's own, free to be stopped, killed and started again; closed afterwards."""
    lib, java = require_kafka()
    yield from running(KafkaBroker(lib=lib, java=java))
