"""A client whose security.protocol is not the listener's: recognised in librdkafka's words, said as such.

librdkafka retries such a connection quietly, and after the connect timeout the probe's
message would be "cannot reach any Kafka broker", which sends the user to the network. Each
side of the mismatch leaves its own trace:

- TLS at a plaintext listener: the error callback gets librdkafka's own guess, "SSL handshake
  failed: ... connecting to a PLAINTEXT broker listener?".
- Plaintext at a TLS listener: the broker closes the connection at csv2lp's first request.
  librdkafka 2.x only logs it ("Disconnected: connection closed by peer ... (after 1ms in
  state APIVERSION_QUERY)", and only with log.connection.close), older ones said
  "connecting to a SSL listener?" in an error.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .settings import CA_ENV, PROTOCOL_ENV, ClientConfig, KafkaSettings

TLS_PROTOCOLS = ("SSL", "SASL_SSL")

_PLAINTEXT_LISTENER = re.compile(r"connecting to a PLAINTEXT broker listener\?")
_TLS_LISTENER = re.compile(r"connecting to a SSL listener\?|^Disconnected\b.*\bin state APIVERSION_QUERY\b")
# Where librdkafka says the text came from: "[thrd:...]: " (a log line), then "ssl://host:port/bootstrap: ".
_THREAD = re.compile(r"^\[thrd:[^\]]*\]: ")
_BROKER = re.compile(r"^(?:\w+://)?(\S+?)/(?:bootstrap|-?\d+): ")


class Hint(NamedTuple):
    """One trace of a mismatch: the broker it came from (None: not said) and librdkafka's text without the broker."""

    tls_client: bool  # True: csv2lp spoke TLS to a plaintext listener; False: plaintext to a TLS listener
    broker: str | None
    text: str


def uses_tls(client: ClientConfig) -> bool:
    return client.properties.get("security.protocol", "PLAINTEXT").strip().upper() in TLS_PROTOCOLS


def recognise(raw: str, client: ClientConfig) -> Hint | None:
    """The mismatch `raw` (an error's or a log line's text from librdkafka) is a trace of, if any."""
    text = _THREAD.sub("", raw.strip())
    where = _BROKER.match(text)
    broker = where.group(1) if where else None
    text = text[where.end():] if where else text
    tls = uses_tls(client)
    # Each trace counts only for its own side: a plaintext client never does a TLS handshake, and a
    # TLS client that reached APIVERSION_QUERY has finished it.
    if (_PLAINTEXT_LISTENER if tls else _TLS_LISTENER).search(text):
        return Hint(tls, broker, text)
    return None


def message(settings: KafkaSettings, client: ClientConfig, hint: Hint, librdkafka: str) -> str:
    """The one line for a mismatch; `librdkafka` is the hint's text as the user may see it (masked, no state)."""
    broker = hint.broker or settings.brokers
    protocol = client.properties.get("security.protocol", "PLAINTEXT")
    origin = client.origins.get("security.protocol")
    spoke = f"security.protocol {protocol}, " + (f"from {origin}" if origin else "librdkafka's default")
    if hint.tls_client:
        return (f"the broker at {broker} did not answer TLS: it may be a plaintext listener ({spoke}; librdkafka: "
                f"{librdkafka}). Check ${PROTOCOL_ENV} (or security.protocol in --kafka-config) against the "
                f"listener's protocol, and --kafka-brokers against its port.")
    return (f"the broker at {broker} closed the connection during the handshake: it may be a TLS listener ({spoke}; "
            f"librdkafka: {librdkafka}). Set ${PROTOCOL_ENV}=SSL (or SASL_SSL) and ${CA_ENV}, or security.protocol "
            f"and ssl.ca.location in --kafka-config.")
