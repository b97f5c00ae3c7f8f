"""What the Kafka sink is told: the brokers, topic, limits, and the client settings from a file or the environment.

csv2lp sets the producer settings its promises rest on itself (idempotence, acks=all, the
timeout, the message size, the queue bound); everything else librdkafka knows (security,
SASL, TLS, client.id, compression, linger.ms) may come from `--kafka-config FILE`, a file of
librdkafka properties (`key=value` lines, `#` comments), and the SASL user, password and
mechanism from $KAFKA_SASL_USERNAME, $KAFKA_SASL_PASSWORD, $KAFKA_SASL_MECHANISM (with
$KAFKA_SECURITY_PROTOCOL and $KAFKA_SSL_CA_LOCATION). Secrets never come from argv, where
other users can read them in the process list, and never appear in a message: `mask`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ...errors import ConverterError

# Lines per message: the consumer's rule (telegraf/kafka-consumer.conf) is
# max_undelivered_messages x lines per message < metric_buffer_limit, sized there for 1,000.
DEFAULT_MESSAGE_LINES = 1_000
# Bytes per message (lines and key): librdkafka's own message.max.bytes default, under the
# broker's max.message.bytes default (1,048,588) with room for the record batch's framing.
DEFAULT_MESSAGE_BYTES = 1_000_000
# Room left under a topic's max.message.bytes for the record batch header and one record's framing.
FRAMING_BYTES = 512
# Generous: a broker restart, a leader election or a network outage of minutes is waited out.
DEFAULT_TIMEOUT_S = 900.0
# How long the first contact may take before "cannot reach any broker" (also an unknown topic).
CONNECT_TIMEOUT_S = 10.0
# Messages waiting in librdkafka's queue for the broker, at most: the bound on memory while it is
# away (librdkafka's default is 1 GB). 16 MB is ~0.3 s of lines at full speed: enough to keep
# 1 MB batches flowing to every partition, small enough that a long outage costs no memory.
QUEUE_KBYTES = 16 * 1024
# lz4: fastest to produce and consume of the codecs Kafka has, measured here on Movebank lines
# (300,000 lines, 51 MB, 1,000-line messages): lz4 1.3 M lines/s and 8.3 MB on the broker,
# zstd 0.96 M lines/s and 5.2 MB, snappy 0.52 M and 9.2 MB, none 0.6 M and 51 MB (benchmarks/README.md).
DEFAULT_COMPRESSION = "lz4"

USERNAME_ENV = "KAFKA_SASL_USERNAME"
PASSWORD_ENV = "KAFKA_SASL_PASSWORD"
MECHANISM_ENV = "KAFKA_SASL_MECHANISM"
PROTOCOL_ENV = "KAFKA_SECURITY_PROTOCOL"
CA_ENV = "KAFKA_SSL_CA_LOCATION"

INSTALL_HINT = "pip install 'csv2lp[kafka]'"

# Settings csv2lp decides, with the option that sets them instead.
OWNED = {
    "bootstrap.servers": "--kafka-brokers",
    "metadata.broker.list": "--kafka-brokers",
    "acks": "nothing: csv2lp always waits for all in-sync replicas (acks=all)",
    "request.required.acks": "nothing: csv2lp always waits for all in-sync replicas (acks=all)",
    "enable.idempotence": "nothing: csv2lp's producer is always idempotent",
    "message.timeout.ms": "--kafka-timeout",
    "delivery.timeout.ms": "--kafka-timeout",
    "message.max.bytes": "--kafka-message-bytes",
    "batch.size": "--kafka-message-bytes",
    "queue.buffering.max.kbytes": "nothing: it bounds csv2lp's memory while a broker is away",
    "queue.buffering.max.messages": "nothing: it bounds csv2lp's memory while a broker is away",
}
SECRET_KEYS = ("sasl.password", "ssl.key.password", "ssl.keystore.password", "sasl.oauthbearer.client.secret",
               "ssl.key.pem", "ssl_key")
MASK = "***"
_MASK_MIN_CHARS = 4


class KafkaWriteError(ConverterError):
    """The broker cannot be reached, refuses the topic or the messages, or did not acknowledge them in time."""


@dataclass(frozen=True)
class KafkaSettings:
    """Where the lines go and how they are cut into messages (the options of `csv2lp --kafka-...`)."""

    brokers: str
    topic: str
    timeout_s: float = DEFAULT_TIMEOUT_S  # 0: wait for the broker without limit
    message_lines: int = DEFAULT_MESSAGE_LINES
    message_bytes: int | None = None  # None: DEFAULT_MESSAGE_BYTES, or less if the topic takes less
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    queue_kbytes: int = QUEUE_KBYTES

    def __post_init__(self) -> None:
        if not self.topic.strip():
            raise KafkaWriteError("--kafka-topic is empty; give the topic's name.")
        for broker in self.broker_list:
            host, colon, port = broker.rpartition(":")
            if not (colon and host and port.isdigit() and 0 < int(port) < 65536):
                raise KafkaWriteError(f"--kafka-brokers {self.brokers}: {broker!r} is not HOST:PORT "
                                      f"(e.g. kafka-1:9092,kafka-2:9092).")
        if self.timeout_s < 0:
            raise KafkaWriteError(f"--kafka-timeout must be 0 (no limit) or more seconds, got {self.timeout_s:g}.")

    @property
    def broker_list(self) -> list[str]:
        return [b.strip() for b in self.brokers.split(",") if b.strip()] or [self.brokers]


@dataclass(frozen=True)
class ClientConfig:
    """librdkafka properties from the file and the environment, and where each came from."""

    properties: dict[str, str] = field(default_factory=dict, repr=False)
    origins: dict[str, str] = field(default_factory=dict)

    def secrets(self) -> tuple[str, ...]:
        return tuple(v for k, v in self.properties.items() if k in SECRET_KEYS and len(v) >= _MASK_MIN_CHARS)

    def mask(self, text: str) -> str:
        for secret in sorted(self.secrets(), key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    @property
    def compression(self) -> str:
        return self.properties.get("compression.type") or self.properties.get("compression.codec") \
            or DEFAULT_COMPRESSION


_PROPERTY = re.compile(r"\s*([A-Za-z0-9_.\-]+)\s*=\s?(.*?)\s*$")


def read_properties(path: str) -> dict[str, str]:
    """A librdkafka/Java properties file: `key=value` per line; `#` and `!` start comments."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise KafkaWriteError(f"--kafka-config {path}: cannot read it ({why}).") from None
    properties: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip()[:1] in ("#", "!"):
            continue
        match = _PROPERTY.fullmatch(line)
        if match is None:
            raise KafkaWriteError(f"--kafka-config {path}:{number}: not a `key=value` line; librdkafka properties "
                                  f"look like `security.protocol=SASL_SSL`.")
        key, value = match.group(1), match.group(2)
        if key in OWNED:
            raise KafkaWriteError(f"--kafka-config {path}:{number}: {key} is set by csv2lp; use {OWNED[key]}.")
        properties[key] = value
    return properties


def read_client_config(config_file: str | None, environ: Mapping[str, str] | None = None) -> ClientConfig:
    """The file's properties, then the environment's SASL/TLS settings; one key given by both is an error."""
    environ = os.environ if environ is None else environ
    properties = read_properties(config_file) if config_file else {}
    origins = {key: f"--kafka-config {config_file}" for key in properties}
    from_env = {
        "sasl.username": environ.get(USERNAME_ENV, "").strip(),
        "sasl.password": environ.get(PASSWORD_ENV, ""),
        "sasl.mechanism": environ.get(MECHANISM_ENV, "").strip(),
        "security.protocol": environ.get(PROTOCOL_ENV, "").strip(),
        "ssl.ca.location": environ.get(CA_ENV, "").strip(),
    }
    names = {"sasl.username": USERNAME_ENV, "sasl.password": PASSWORD_ENV, "sasl.mechanism": MECHANISM_ENV,
             "security.protocol": PROTOCOL_ENV, "ssl.ca.location": CA_ENV}
    for key, value in from_env.items():
        if not value:
            continue
        if key in properties:
            raise KafkaWriteError(f"{key} is set both in {origins[key]} and in ${names[key]}: give it once.")
        properties[key] = value
        origins[key] = f"${names[key]}"
    if properties.get("sasl.username") and "security.protocol" not in properties:
        # A password is never sent in the clear unless asked for: SASL over TLS by default.
        properties["security.protocol"] = "SASL_SSL"
        origins["security.protocol"] = "csv2lp's default with a SASL user"
    if properties.get("sasl.username") and "sasl.mechanism" not in properties \
            and "sasl.mechanisms" not in properties:
        properties["sasl.mechanism"] = "PLAIN"
        origins["sasl.mechanism"] = "csv2lp's default with a SASL user"
    if properties.get("sasl.username") and not properties.get("sasl.password"):
        raise KafkaWriteError(f"a SASL user ({origins['sasl.username']}) without a password: set ${PASSWORD_ENV} "
                              f"or sasl.password in --kafka-config.")
    config = ClientConfig(properties, origins)
    refuse_unusable_tls_files(config)
    return config


# What librdkafka (OpenSSL's PEM readers) looks for in each TLS file setting: a PEM block of
# its kind, said as its first line; what the file is for; how a DER file of that kind becomes PEM.
@dataclass(frozen=True)
class PemFile:
    block: re.Pattern[bytes]
    first_line: str
    purpose: str
    from_der: str  # an openssl command, "{path}" and "{pem}" filled in


PEM_FILES = {
    "ssl.ca.location": PemFile(re.compile(rb"-----BEGIN (?:TRUSTED |X509 )?(?:CERTIFICATE|CRL)-----"),
                               "-----BEGIN CERTIFICATE-----",
                               "the CA certificate (PEM) that signed the broker's certificate",
                               "openssl x509 -inform DER -in {path} -out {pem}"),
    "ssl.certificate.location": PemFile(re.compile(rb"-----BEGIN (?:TRUSTED )?CERTIFICATE-----"),
                                        "-----BEGIN CERTIFICATE-----", "this client's certificate (PEM)",
                                        "openssl x509 -inform DER -in {path} -out {pem}"),
    "ssl.key.location": PemFile(re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "-----BEGIN PRIVATE KEY-----",
                                "this client's private key (PEM)", "openssl pkey -inform DER -in {path} -out {pem}"),
}
# A PEM file is looked through this far for its first block (a system CA bundle is ~200 kB);
# a larger file is left to librdkafka, so that the check never holds a large file in memory.
PEM_SCAN_BYTES = 4 << 20


def refuse_unusable_tls_files(client: ClientConfig) -> None:
    """A TLS file setting (ssl.ca.location, ssl.certificate.location, ssl.key.location) that names
    a file csv2lp cannot read, or one with no PEM block of its kind (a DER file, the wrong file),
    said with where the setting came from, before any connection: librdkafka's own words are
    OpenSSL's ("ssl.ca.location failed: ... BIO lib", "... no certificate or crl found"). It reads
    them only for TLS, so only then are they checked; "probe" (the system's CAs) and a directory
    (OpenSSL's hashed certificates) are librdkafka's to read."""
    protocol = client.properties.get("security.protocol", "").strip().upper()
    if protocol not in ("SSL", "SASL_SSL"):
        return
    for key, kind in PEM_FILES.items():
        path = client.properties.get(key, "")
        if not path or (key == "ssl.ca.location" and path == "probe"):
            continue
        why = _pem_file_problem(path, kind)
        if why is not None:
            origin = client.origins.get(key, "the settings")
            setting = origin if origin.startswith("$") else f"{key} in {origin}"
            raise KafkaWriteError(f"{setting} names {path}, {why}: give {kind.purpose}.")


def _pem_file_problem(path: str, kind: PemFile) -> str | None:
    """Why librdkafka could not take `path` as `kind`, or None (also when csv2lp cannot tell)."""
    try:
        with open(path, "rb") as file:
            head = file.read(PEM_SCAN_BYTES + 1)
    except FileNotFoundError:
        return "which does not exist"
    except IsADirectoryError:
        return None
    except OSError as exc:
        return f"which csv2lp cannot read ({exc.strerror})"
    if len(head) > PEM_SCAN_BYTES or kind.block.search(head):
        return None
    if not head.strip():
        return "which is empty"
    if head[:1] == b"\x30":  # an ASN.1 SEQUENCE: how the DER form of a certificate or a key begins
        command = kind.from_der.format(path=path, pem=f"{path}.pem")  # a new file: the user's is never overwritten
        return f"which looks like DER, not the PEM librdkafka reads (`{command}` converts it)"
    return f"which holds no PEM block ({kind.first_line})"
