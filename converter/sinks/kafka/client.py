"""confluent-kafka (librdkafka), imported here and nowhere else: the first contact and the producer's settings.

`probe` runs before the first row is read and answers in seconds: can a broker be reached,
does it take the credentials, does the topic exist (or does the broker create it on first
use), how large may a message be. Each "no" is one KafkaWriteError of one line. librdkafka
itself would retry all of these quietly until a message times out, minutes later.

librdkafka's own log goes to the `csv2lp.kafka` logger (nothing on stderr by default);
its errors reach `ClientErrors`, which keeps the latest of each kind, masked, for messages,
and (with the probe's log lines) the traces of a security.protocol that is not the listener's.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from . import mismatch
from .settings import (
    CA_ENV,
    DEFAULT_MESSAGE_BYTES,
    FRAMING_BYTES,
    INSTALL_HINT,
    ClientConfig,
    KafkaSettings,
    KafkaWriteError,
)

LOG = logging.getLogger("csv2lp.kafka")
LOG.addHandler(logging.NullHandler())  # no "last resort" printing of librdkafka's warnings to stderr

# An unknown topic may be in the middle of being created (by the broker on first use, or by someone).
_UNKNOWN_TOPIC_TRIES = 3
_METADATA_TRY_S = 1.0
_DESCRIBE_TIMEOUT_S = 5.0
# A protocol mismatch is said before the connect timeout once its traces went on this long (and the
# latest is this recent): one trace could be a broker closing connections while it stops.
_MISMATCH_S = 3.0
_MISMATCH_FRESH_S = 2.0

# librdkafka's error text carries the connection ("127.0.0.1:9092/bootstrap: ") and the state
# machine ("(after 0ms in state CONNECT)"); neither helps a user.
_WHERE = re.compile(r"^\S+/(?:bootstrap|\d+): ")
# OpenSSL's reason when the broker's certificate did not verify (an unknown CA, or not this host's
# name), and librdkafka's advice after it, which csv2lp's message replaces with where the CA came from.
_VERIFY_FAILED = "certificate verify failed"
_LIBRDKAFKA_CA_ADVICE = re.compile(r": broker certificate could not be verified, verify that .*$")
_STATE = re.compile(r"\s*\(after \d+ms in state \w+(?:, \d+ identical error\(s\) suppressed)?\)$")


def load() -> ModuleType:
    """The confluent_kafka module, or a one-line error that says how to install it."""
    try:
        import confluent_kafka
    except ImportError:
        raise KafkaWriteError(f"writing to Kafka needs the confluent-kafka package: {INSTALL_HINT}") from None
    return confluent_kafka


def plain_text(text: str) -> str:
    return _STATE.sub("", _WHERE.sub("", text.strip()))


class ClientErrors:
    """librdkafka's error callback: the latest error per code, and the first fatal one."""

    def __init__(self, client: ClientConfig) -> None:
        self.client = client
        self.lock = threading.Lock()
        self.latest: dict[str, str] = {}
        self.last: str | None = None
        self.last_at = 0.0
        self.fatal: str | None = None
        self.hint: mismatch.Hint | None = None  # the latest trace of a protocol mismatch
        self.hint_since = self.hint_at = 0.0

    def __call__(self, error: Any) -> None:
        text = self.client.mask(plain_text(error.str()))
        with self.lock:
            self.latest[error.name()] = text
            self.last, self.last_at = text, time.monotonic()
            if error.fatal() and self.fatal is None:
                self.fatal = text
        self._note_mismatch(error.str())

    def log(self, level: int, fmt: str, *args: Any) -> None:
        """The probe's `logger`: librdkafka's log lines go on to LOG, and are read for a protocol mismatch
        (a plaintext client at a TLS listener shows only there). confluent-kafka calls
        log(level, "%s [%s] %s", facility, client name, text)."""
        LOG.log(level, fmt, *args)
        if args:
            self._note_mismatch(str(args[-1]))

    def _note_mismatch(self, raw: str) -> None:
        hint = mismatch.recognise(raw, self.client)
        if hint is None:
            return
        now = time.monotonic()
        with self.lock:
            if self.hint is None:
                self.hint_since = now
            self.hint, self.hint_at = hint, now

    def mismatch_persists(self) -> bool:
        now = time.monotonic()
        with self.lock:
            return self.hint is not None and now - self.hint_since >= _MISMATCH_S \
                and now - self.hint_at <= _MISMATCH_FRESH_S

    def mismatch_message(self, settings: KafkaSettings) -> str | None:
        with self.lock:
            hint = self.hint
        if hint is None:
            return None
        return mismatch.message(settings, self.client, hint, self.client.mask(plain_text(hint.text)))

    def get(self, *names: str) -> str | None:
        with self.lock:
            return next((self.latest[name] for name in names if name in self.latest), None)

    def clear(self) -> None:
        with self.lock:
            self.latest.clear()
            self.last = None


@dataclass(frozen=True)
class Topic:
    """What the cluster said about the topic before the first message."""

    name: str
    partitions: int
    max_message_bytes: int | None  # its max.message.bytes; None when the broker would not say
    created: bool  # the broker created it on csv2lp's first request (auto.create.topics.enable)
    message_bytes: int  # the largest message csv2lp sends there: key and lines


def base_config(settings: KafkaSettings, client: ClientConfig, errors: ClientErrors) -> dict[str, Any]:
    return {
        "client.id": "csv2lp",
        **client.properties,
        "bootstrap.servers": ",".join(settings.broker_list),
        "error_cb": errors,
        "logger": LOG,
        "log.connection.close": False,
    }


def producer_config(settings: KafkaSettings, client: ClientConfig, errors: ClientErrors,
                    topic: Topic) -> dict[str, Any]:
    """The producer csv2lp's promises need: idempotent (no duplicates or reordering from its own
    retries), acks from all in-sync replicas, every message timed out after --kafka-timeout, the
    queue bounded, batches no larger than the topic takes."""
    return {
        "compression.type": client.compression,
        "linger.ms": 10,
        **base_config(settings, client, errors),
        "enable.idempotence": True,
        "acks": "all",
        "message.timeout.ms": int(settings.timeout_s * 1000),
        "queue.buffering.max.kbytes": settings.queue_kbytes,
        "message.max.bytes": topic.message_bytes + FRAMING_BYTES,
        "batch.size": topic.message_bytes,
        # Kafka's own convention (the Java client's default partitioner): murmur2 of the key, so that
        # any Java or Go client hashing the same series picks the same partition (librdkafka: crc32).
        "partitioner": "murmur2_random",
        # Back soon after a broker restart: at most 2 s between tries to reconnect (librdkafka: 10 s).
        "reconnect.backoff.max.ms": 2000,
    }


def probe(settings: KafkaSettings, client: ClientConfig, notify: Any = None) -> Topic:
    """Reach a broker, check the credentials and the topic, and read its message limit; or raise."""
    kafka = load()
    from confluent_kafka.admin import AdminClient

    errors = ClientErrors(client)
    # The probe's log lines are read too (errors.log), with connection closes among them: a plaintext
    # client at a TLS listener leaves its trace only there.
    config = {**base_config(settings, client, errors), "logger": errors, "log.connection.close": True}
    try:
        admin = AdminClient(config)
    except kafka.KafkaException as exc:
        raise KafkaWriteError(_config_refused(client, exc)) from None
    deadline = time.monotonic() + settings.connect_timeout_s
    unknown = 0
    while True:
        code, partitions = _describe_topic(kafka, admin, settings.topic)
        if code is None and partitions and all(leader is not None for leader in partitions):
            break
        if code == kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED:
            raise KafkaWriteError(f"Kafka does not let csv2lp use topic {settings.topic!r} "
                                  f"(TOPIC_AUTHORIZATION_FAILED): ask for DESCRIBE and WRITE on it for this user.")
        if code == kafka.KafkaError.UNKNOWN_TOPIC_OR_PART:
            unknown += 1
            if unknown == 1:
                _ask_to_create(kafka, settings, client)
                continue
            if unknown >= _UNKNOWN_TOPIC_TRIES:
                raise KafkaWriteError(
                    f"topic {settings.topic!r} does not exist at {settings.brokers}, and the broker does not create "
                    f"topics on first use (auto.create.topics.enable=false): create it, e.g. `kafka-topics.sh "
                    f"--bootstrap-server {settings.broker_list[0]} --create --topic {settings.topic} --partitions 6` "
                    f"(consumers in a group share its partitions), or check the name.")
        elif code is not None:
            _refused_at_once(admin, settings, errors)
            if errors.mismatch_persists():
                raise KafkaWriteError(errors.mismatch_message(settings))
        if time.monotonic() > deadline:
            if code is not None and code != kafka.KafkaError.UNKNOWN_TOPIC_OR_PART:
                if mismatched := errors.mismatch_message(settings):
                    raise KafkaWriteError(mismatched)
                why = errors.get("_RESOLVE", "_TRANSPORT") or errors.last or "no answer"
                raise KafkaWriteError(f"cannot reach any Kafka broker of --kafka-brokers {settings.brokers} in "
                                      f"{settings.connect_timeout_s:g} s: {why}. Check the address, that the broker "
                                      f"runs, and that the address it advertises (advertised.listeners) can be "
                                      f"reached from here.")
            raise KafkaWriteError(f"topic {settings.topic!r} at {settings.brokers} has no leader for every partition "
                                  f"after {settings.connect_timeout_s:g} s.")
        time.sleep(0.2)
    created = unknown > 0  # unknown at first, there now: the broker made it for the producer's request
    limit = _max_message_bytes(admin, settings.topic)
    topic = Topic(settings.topic, len(partitions), limit, created, _message_bytes(settings, limit))
    if created and notify is not None:
        notify(f"Kafka: the broker created topic {settings.topic!r} on first use, with {topic.partitions} "
               f"partition{'s' if topic.partitions != 1 else ''} (its num.partitions): consumers in a group share "
               f"at most that many; create topics beforehand to choose.")
    return topic


def _describe_topic(kafka: ModuleType, admin: Any, topic: str) -> tuple[int | None, list[Any]]:
    """(error code or None, the leader of each partition) from a DescribeTopics request, which
    never creates the topic (a producer's metadata request may)."""
    try:
        future = admin.describe_topics(kafka.TopicCollection([topic]), request_timeout=_METADATA_TRY_S)[topic]
        return None, [partition.leader for partition in future.result().partitions]
    except kafka.KafkaException as exc:
        return exc.args[0].code(), []


def _refused_at_once(admin: Any, settings: KafkaSettings, errors: ClientErrors) -> None:
    """Credentials or TLS refused: said at once (librdkafka would retry them until the deadline)."""
    admin.poll(0)  # serves the error callback
    refused = errors.get("_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED")
    if refused:
        raise KafkaWriteError(f"Kafka at {settings.brokers} refused to sign csv2lp in{_credentials_origin(errors.client)}: "
                              f"{refused}. Check the user, password and sasl.mechanism, and security.protocol (the "
                              f"listener's).")
    tls = errors.get("_SSL")
    if tls:
        raise KafkaWriteError(_tls_failed(settings, errors.client, tls))


def _tls_failed(settings: KafkaSettings, client: ClientConfig, tls: str) -> str:
    """The one line for a failed TLS handshake. A certificate that did not verify: which CA was tried, from
    where, and what to set (librdkafka's own advice names only ssl.ca.location and the system's CAs)."""
    if _VERIFY_FAILED not in tls:
        return (f"TLS with Kafka at {settings.brokers} failed: {tls}. Check ssl.ca.location ($KAFKA_SSL_CA_LOCATION) "
                f"and security.protocol.")
    key = next((k for k in ("ssl.ca.location", "ssl.ca.pem") if client.properties.get(k)), None)
    if key == "ssl.ca.location":
        tried = f"the CA in ssl.ca.location {client.properties[key]} (from {client.origins.get(key, 'the settings')})"
    elif key:
        tried = f"the CA in ssl.ca.pem (from {client.origins.get(key, 'the settings')})"
    else:
        tried = "the system's CA certificates (no ssl.ca.location was given)"
    return (f"TLS with Kafka at {settings.brokers} failed: the broker's certificate could not be verified with {tried}"
            f"; {_LIBRDKAFKA_CA_ADVICE.sub('', tls)}. Set ${CA_ENV}, or ssl.ca.location in --kafka-config, to the "
            f"CA certificate (PEM) that signed the broker's, and check that the certificate is for the host "
            f"--kafka-brokers names.")


def _ask_to_create(kafka: ModuleType, settings: KafkaSettings, client: ClientConfig) -> None:
    """A producer's metadata request for the topic: a broker with auto.create.topics.enable creates it
    (the admin client's requests never do)."""
    try:
        producer = kafka.Producer(base_config(settings, client, ClientErrors(client)))
        producer.list_topics(topic=settings.topic, timeout=_METADATA_TRY_S * 3)
    except kafka.KafkaException:
        pass


def _max_message_bytes(admin: Any, topic: str) -> int | None:
    """The topic's max.message.bytes (the broker's message.max.bytes unless the topic sets its own);
    None when the broker does not say (no DESCRIBE_CONFIGS permission)."""
    from confluent_kafka.admin import ConfigResource, ResourceType

    try:
        futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)],
                                         request_timeout=_DESCRIBE_TIMEOUT_S)
        entries = next(iter(futures.values())).result(timeout=_DESCRIBE_TIMEOUT_S)
        return int(entries["max.message.bytes"].value)
    except Exception:  # noqa: BLE001 - KafkaException, a timeout, no such entry: the limit is not known
        return None


def _message_bytes(settings: KafkaSettings, limit: int | None) -> int:
    """The bytes one message may take (key and lines): --kafka-message-bytes, or the default, under the topic's limit."""
    room = limit - FRAMING_BYTES if limit is not None else None
    if settings.message_bytes is not None:
        if room is not None and settings.message_bytes > room:
            raise KafkaWriteError(f"--kafka-message-bytes {settings.message_bytes:,} is more than topic "
                                  f"{settings.topic!r} takes: its max.message.bytes is {limit:,}, less "
                                  f"{FRAMING_BYTES} for Kafka's framing; give at most {room:,}, or raise the "
                                  f"topic's max.message.bytes.")
        return settings.message_bytes
    return min(DEFAULT_MESSAGE_BYTES, room) if room is not None else DEFAULT_MESSAGE_BYTES


def _credentials_origin(client: ClientConfig) -> str:
    origin = client.origins.get("sasl.username")
    return f" (the user from {origin})" if origin else " (no SASL user was given)"


def _config_refused(client: ClientConfig, exc: Exception) -> str:
    text = client.mask(plain_text(exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)))
    files = sorted({o for o in client.origins.values() if o.startswith("--kafka-config")})
    where = f" (from {files[0]})" if files else ""
    return f"librdkafka refused a setting{where}: {text.rstrip('.')}."  # its texts may end in a period already
