"""converter/sinks/kafka/settings.py: the options, the --kafka-config file, the environment, and masking.

No broker here. The properties file is librdkafka's (and Java's) `key=value` format;
csv2lp refuses the keys its promises rest on; SASL secrets come from the file or the
environment, never both, and never show in a message.
"""

from __future__ import annotations

import textwrap

import pytest

from converter.sinks.kafka import KafkaSettings, KafkaWriteError, read_client_config, read_properties
from converter.sinks.kafka.client import _message_bytes, plain_text
from converter.sinks.kafka.mismatch import Hint, recognise
from converter.sinks.kafka.settings import DEFAULT_MESSAGE_BYTES, FRAMING_BYTES, MASK


def write(tmp_path, text: str):
    path = tmp_path / "kafka.properties"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_a_properties_file_has_comments_blanks_and_spaces_around_equals(tmp_path):
    path = write(tmp_path, """\
        # SASL over TLS
        ! also a comment
        security.protocol=SASL_SSL

        sasl.mechanism = SCRAM-SHA-512
        ssl.ca.location=/etc/ssl/ca.pem
        client.id=site-7=north
    """)
    assert read_properties(path) == {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                                     "ssl.ca.location": "/etc/ssl/ca.pem", "client.id": "site-7=north"}


@pytest.mark.parametrize(("line", "message"), [
    ("acks=1", "acks is set by csv2lp; use nothing: csv2lp always waits for all in-sync replicas (acks=all)."),
    ("enable.idempotence=false", "enable.idempotence is set by csv2lp; use nothing: csv2lp's producer is always "
                                 "idempotent."),
    ("bootstrap.servers=k:9092", "bootstrap.servers is set by csv2lp; use --kafka-brokers."),
    ("message.timeout.ms=5", "message.timeout.ms is set by csv2lp; use --kafka-timeout."),
    ("message.max.bytes=5", "message.max.bytes is set by csv2lp; use --kafka-message-bytes."),
    ("security.protocol", "not a `key=value` line; librdkafka properties look like `security.protocol=SASL_SSL`."),
])
def test_a_file_line_that_csv2lp_cannot_take_names_the_file_and_line(tmp_path, line, message):
    path = write(tmp_path, f"client.id=x\n{line}\n")
    with pytest.raises(KafkaWriteError) as raised:
        read_properties(path)
    assert str(raised.value) == f"--kafka-config {path}:2: {message}"


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(KafkaWriteError, match=r"^--kafka-config .*/nope: cannot read it \(No such file or directory\)\.$"):
        read_properties(str(tmp_path / "nope"))


def test_sasl_from_the_environment_defaults_to_plain_over_tls():
    config = read_client_config(None, {"KAFKA_SASL_USERNAME": "site7", "KAFKA_SASL_PASSWORD": "s3cret-pw"})
    assert config.properties == {"sasl.username": "site7", "sasl.password": "s3cret-pw",
                                 "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"}
    assert config.origins["sasl.password"] == "$KAFKA_SASL_PASSWORD"
    assert "s3cret-pw" not in repr(config)


def test_the_environment_names_the_protocol_mechanism_and_ca():
    config = read_client_config(None, {"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "pw12",
                                       "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                                       "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                                       "KAFKA_SSL_CA_LOCATION": "/ca.pem"})
    assert config.properties["security.protocol"] == "SASL_PLAINTEXT"
    assert config.properties["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config.properties["ssl.ca.location"] == "/ca.pem"


def test_nothing_given_is_plaintext_without_sasl():
    assert read_client_config(None, {}).properties == {}


def test_one_setting_from_both_the_file_and_the_environment_is_refused(tmp_path):
    path = write(tmp_path, "sasl.username=a\nsasl.password=filepass\n")
    with pytest.raises(KafkaWriteError) as raised:
        read_client_config(path, {"KAFKA_SASL_PASSWORD": "envpass"})
    assert str(raised.value) == f"sasl.password is set both in --kafka-config {path} and in $KAFKA_SASL_PASSWORD: " \
                                f"give it once."
    assert "filepass" not in str(raised.value) and "envpass" not in str(raised.value)


def test_a_sasl_user_without_a_password_is_refused():
    with pytest.raises(KafkaWriteError, match=r"^a SASL user \(\$KAFKA_SASL_USERNAME\) without a password"):
        read_client_config(None, {"KAFKA_SASL_USERNAME": "site7"})


def test_secrets_are_masked_in_any_text(tmp_path):
    path = write(tmp_path, "sasl.username=u\nsasl.password=hunter22\nssl.key.password=keypass9\n")
    config = read_client_config(path, {})
    assert config.mask("auth failed for u with hunter22 (key keypass9)") == f"auth failed for u with {MASK} (key {MASK})"


def test_compression_is_lz4_unless_the_file_says_otherwise(tmp_path):
    assert read_client_config(None, {}).compression == "lz4"
    assert read_client_config(write(tmp_path, "compression.type=zstd\n"), {}).compression == "zstd"


@pytest.mark.parametrize(("brokers", "message"), [
    ("kafka", "--kafka-brokers kafka: 'kafka' is not HOST:PORT (e.g. kafka-1:9092,kafka-2:9092)."),
    ("k1:9092,k2", "--kafka-brokers k1:9092,k2: 'k2' is not HOST:PORT (e.g. kafka-1:9092,kafka-2:9092)."),
    ("k1:0", "--kafka-brokers k1:0: 'k1:0' is not HOST:PORT (e.g. kafka-1:9092,kafka-2:9092)."),
])
def test_brokers_are_host_port_pairs(brokers, message):
    with pytest.raises(KafkaWriteError) as raised:
        KafkaSettings(brokers=brokers, topic="t")
    assert str(raised.value) == message


def test_brokers_may_have_spaces_after_commas():
    assert KafkaSettings(brokers="k1:9092, k2:9093", topic="t").broker_list == ["k1:9092", "k2:9093"]


def test_message_bytes_fit_the_topic_limit():
    settings = KafkaSettings(brokers="k:9092", topic="t")
    assert _message_bytes(settings, None) == DEFAULT_MESSAGE_BYTES
    assert _message_bytes(settings, 1_048_588) == DEFAULT_MESSAGE_BYTES
    assert _message_bytes(settings, 100_000) == 100_000 - FRAMING_BYTES
    given = KafkaSettings(brokers="k:9092", topic="t", message_bytes=50_000)
    assert _message_bytes(given, 100_000) == 50_000
    with pytest.raises(KafkaWriteError, match=r"^--kafka-message-bytes 50,000 is more than topic 't' takes: its "
                                              r"max.message.bytes is 20,000, less 512 for Kafka's framing; give at "
                                              r"most 19,488, or raise the topic's max.message.bytes.$"):
        _message_bytes(given, 20_000)


@pytest.mark.parametrize(("raw", "plain"), [
    ("127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)",
     "Connect to ipv4#127.0.0.1:1 failed: Connection refused"),
    ("sasl_plaintext://127.0.0.1:9/1: SASL authentication error: Authentication failed (after 3ms in state "
     "AUTH_REQ, 2 identical error(s) suppressed)", "SASL authentication error: Authentication failed"),
    ("1/1 brokers are down", "1/1 brokers are down"),
])
def test_librdkafka_error_text_loses_its_connection_and_state(raw, plain):
    assert plain_text(raw) == plain


def test_a_ca_file_that_cannot_be_read_is_refused_only_where_librdkafka_would_read_it(tmp_path):
    missing = str(tmp_path / "ca.pem")
    with pytest.raises(KafkaWriteError) as raised:
        read_client_config(None, {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": missing})
    assert str(raised.value) == f"$KAFKA_SSL_CA_LOCATION names {missing}, which does not exist: give the CA " \
                                f"certificate (PEM) that signed the broker's certificate."
    path = write(tmp_path, f"security.protocol=SASL_SSL\nssl.ca.location={missing}\n")
    with pytest.raises(KafkaWriteError, match=rf"^ssl.ca.location in --kafka-config {path} names {missing}, which "):
        read_client_config(path, {"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "pw12"})
    # Not read by librdkafka without TLS; "probe" and a directory of hashed certificates are its own to read.
    for environ in ({"KAFKA_SSL_CA_LOCATION": missing}, {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                                                         "KAFKA_SSL_CA_LOCATION": missing},
                    {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": "probe"},
                    {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": str(tmp_path)}):
        assert read_client_config(None, environ).properties["ssl.ca.location"] == environ["KAFKA_SSL_CA_LOCATION"]


@pytest.mark.parametrize(("protocol", "raw", "hint"), [
    ("SSL", "ssl://127.0.0.1:9092/bootstrap: SSL handshake failed: Disconnected: SSL connection closed by peer: "
            "connecting to a PLAINTEXT broker listener? (after 1ms in state SSL_HANDSHAKE)",
     Hint(True, "127.0.0.1:9092", "SSL handshake failed: Disconnected: SSL connection closed by peer: connecting to "
                                  "a PLAINTEXT broker listener? (after 1ms in state SSL_HANDSHAKE)")),
    (None, "[thrd:127.0.0.1:9093/bootstrap]: 127.0.0.1:9093/bootstrap: Disconnected: connection closed by peer: "
           "receive 0 after POLLIN (after 1ms in state APIVERSION_QUERY)",
     Hint(False, "127.0.0.1:9093", "Disconnected: connection closed by peer: receive 0 after POLLIN (after 1ms in "
                                   "state APIVERSION_QUERY)")),
    ("SASL_PLAINTEXT", "k:9093/1: Disconnected while requesting ApiVersion: might be caused by incorrect "
                       "security.protocol configuration (connecting to a SSL listener?)",
     Hint(False, "k:9093", "Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol "
                           "configuration (connecting to a SSL listener?)")),
    # Each side's trace counts only for its own side; a refused connection is no mismatch.
    ("SSL", "127.0.0.1:9093/bootstrap: Disconnected: connection closed by peer (after 1ms in state APIVERSION_QUERY)",
     None),
    (None, "127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused (after 0ms in state "
           "CONNECT)", None),
])
def test_a_protocol_mismatch_is_recognised_in_librdkafkas_words(protocol, raw, hint):
    environ = {"KAFKA_SECURITY_PROTOCOL": protocol} if protocol else {}
    assert recognise(raw, read_client_config(None, environ)) == hint


def test_a_tls_file_is_looked_through_only_so_far_and_only_for_tls(tmp_path, monkeypatch):
    from converter.sinks.kafka import settings

    text = tmp_path / "ca.txt"
    text.write_text("not a certificate, " * 10)
    tls = {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": str(text)}
    with pytest.raises(KafkaWriteError, match=r"which holds no PEM block \(-----BEGIN CERTIFICATE-----\)"):
        read_client_config(None, tls)
    # Not read by librdkafka without TLS: not checked.
    assert read_client_config(None, {"KAFKA_SSL_CA_LOCATION": str(text)}).properties["ssl.ca.location"] == str(text)
    # A file larger than the scan is librdkafka's to judge: csv2lp never holds a large file in memory.
    monkeypatch.setattr(settings, "PEM_SCAN_BYTES", 64)
    assert read_client_config(None, tls).properties["ssl.ca.location"] == str(text)
    # The block may come after other text (a bundle with comments), and OpenSSL's other certificate blocks count.
    monkeypatch.undo()
    for block in (b"-----BEGIN CERTIFICATE-----", b"-----BEGIN TRUSTED CERTIFICATE-----"):
        text.write_bytes(b"# our CA\n" * 100 + block + b"\nMIIB\n")
        assert read_client_config(None, tls).properties["ssl.ca.location"] == str(text)
