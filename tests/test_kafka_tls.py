"""`csv2lp --kafka-brokers` over TLS, against a real Kafka 4.4.0 broker with SSL and SASL_SSL listeners.

The module's broker gets a throwaway CA and a server certificate for 127.0.0.1 (SAN
IP:127.0.0.1, so librdkafka's default hostname check passes), made with openssl into a
temp folder, and serves them from a PEM keystore (`ssl.keystore.type=PEM`: the key and its
chain in one file). It keeps its PLAINTEXT listener, through which the tests read the topic
back. csv2lp gets its TLS settings as a user would: from the environment
($KAFKA_SECURITY_PROTOCOL, $KAFKA_SSL_CA_LOCATION, $KAFKA_SASL_*) or from `--kafka-config FILE`.
A CA that did not sign the broker's certificate is one error line, in seconds, that names
the verification failure and the setting to fix; so are a CA file that does not exist (before
connecting), and a client without TLS at the SSL listener or with TLS at the PLAINTEXT one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.csv2lp_kafka import (ACKED, Run, acknowledged_lines, assert_exact, assert_one_line_error, kafka_args,
                                  read_topic, reference_lines, run_csv2lp)
from support.influxdb import free_loopback_port
from support.kafka import KafkaBroker, fresh_topic_name, require_kafka
from support.movebank_gen import generate
from support.server_process import running

pytestmark = pytest.mark.kafka

OPENSSL = "/usr/bin/openssl"
OPENSSL_TIMEOUT_S = 60.0
ROWS = 3_000  # 20 animals, 150 fixes each
PARTITIONS = 2
FAST_S = 20.0  # as in test_kafka_sink: "in seconds, not minutes" (the connect timeout is 10 s)
USER, PASSWORD = "csv2lp-tls", "tls-s3cret-Pa55word"


def openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=OPENSSL_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr}"


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA certificate and its key (PEM), valid two days: (certificate, key)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    return cert, key


def make_server_cert(folder: Path, ca_cert: Path, ca_key: Path) -> Path:
    """A server certificate for 127.0.0.1 signed by the CA; the PEM keystore Kafka reads: the
    unencrypted PKCS#8 key, then the certificate and the CA's (the chain)."""
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.pem"
    extensions = folder / "server.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                          "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1",
            cwd=folder)
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(cert), "-days", "2", "-extfile", str(extensions), cwd=folder)
    keystore = folder / "server-keystore.pem"
    keystore.write_text(key.read_text() + cert.read_text() + ca_cert.read_text())
    assert "-----BEGIN PRIVATE KEY-----" in keystore.read_text()  # PKCS#8, which Kafka's PEM keystore reads
    return keystore


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """The CA that signed the broker's certificate, another that did not, and the broker's PEM keystore."""
    folder = tmp_path_factory.mktemp("kafka-tls")
    ca_cert, ca_key = make_ca(folder, "csv2lp-test-ca")
    other_ca, _ = make_ca(folder, "csv2lp-other-ca")
    keystore = make_server_cert(folder, ca_cert, ca_key)
    return {"ca": ca_cert, "other_ca": other_ca, "keystore": keystore, "folder": folder}


@pytest.fixture(scope="module")
def tls_broker(tls):
    """A broker of this module's own: PLAINTEXT, SSL, and SASL_SSL (PLAIN, one user) on free loopback ports."""
    lib, java = require_kafka()
    broker = KafkaBroker(lib=lib, java=java)
    broker.ssl_port = free_loopback_port()
    broker.sasl_ssl_port = free_loopback_port()
    taken = {broker.port, broker.controller_port}
    while broker.ssl_port in taken:
        broker.ssl_port = free_loopback_port()
    taken.add(broker.ssl_port)
    while broker.sasl_ssl_port in taken:
        broker.sasl_ssl_port = free_loopback_port()
    broker.extra_properties.update({
        "listeners": f"PLAINTEXT://127.0.0.1:{broker.port},SSL://127.0.0.1:{broker.ssl_port},"
                     f"SASL_SSL://127.0.0.1:{broker.sasl_ssl_port},CONTROLLER://127.0.0.1:{broker.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker.port},SSL://127.0.0.1:{broker.ssl_port},"
                                f"SASL_SSL://127.0.0.1:{broker.sasl_ssl_port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
        # Kafka's PEM keystore: one file with the private key (PKCS#8, unencrypted: no ssl.key.password)
        # and the certificate chain. Clients are not asked for certificates (ssl.client.auth=none).
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls["keystore"]),
        "ssl.client.auth": "none",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_ssl.plain.sasl.jaas.config":
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_{USER}="{PASSWORD}";',
    })
    yield from running(broker)


@pytest.fixture(scope="module")
def movebank_csv(tmp_path_factory) -> Path:
    return generate(ROWS, tmp_path_factory.mktemp("kafka-tls-csv") / "fishers.csv")


@pytest.fixture(scope="module")
def reference(movebank_csv, tmp_path_factory) -> dict[bytes, list[bytes]]:
    return reference_lines(movebank_csv, tmp_path_factory.mktemp("kafka-tls-ref") / "fishers.lp")


@pytest.fixture
def topic(tls_broker):
    name = tls_broker.create_topic(fresh_topic_name(), partitions=PARTITIONS)
    yield name
    if tls_broker.running:
        tls_broker.delete_topic(name)


def ssl_address(broker: KafkaBroker) -> str:
    return f"127.0.0.1:{broker.ssl_port}"


def assert_all_acknowledged(run: Run) -> None:
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "NOT" not in run.stderr, run.stderr
    assert acknowledged_lines(run.stderr) == ROWS, run.stderr


# -- TLS that works -------------------------------------------------------------------------


def test_ssl_from_the_environment_lands_every_line_exactly(tls_broker, tls, topic, movebank_csv, reference):
    run = run_csv2lp([str(movebank_csv), *kafka_args(ssl_address(tls_broker), topic)],
                     env={"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": str(tls["ca"])})
    assert_all_acknowledged(run)
    records = read_topic(tls_broker, topic, expected_lines=ROWS)  # read back through PLAINTEXT
    assert len(records) == int(ACKED.search(run.stderr).group(2).replace(",", ""))
    assert_exact(records, reference)


def test_ssl_from_a_kafka_config_file_lands_every_line_exactly(tls_broker, tls, topic, movebank_csv, reference,
                                                               tmp_path):
    config = tmp_path / "kafka.properties"
    config.write_text(f"# TLS to the test broker\nsecurity.protocol=SSL\nssl.ca.location={tls['ca']}\n")
    run = run_csv2lp([str(movebank_csv), *kafka_args(ssl_address(tls_broker), topic, "--kafka-config", str(config))])
    assert_all_acknowledged(run)
    assert_exact(read_topic(tls_broker, topic, expected_lines=ROWS), reference)


def test_sasl_plain_over_ssl_signs_in_and_never_prints_the_password(tls_broker, tls, topic, movebank_csv,
                                                                    reference):
    address = f"127.0.0.1:{tls_broker.sasl_ssl_port}"
    # No $KAFKA_SECURITY_PROTOCOL: with a SASL user csv2lp's default is SASL_SSL (and PLAIN).
    env = {"KAFKA_SASL_USERNAME": USER, "KAFKA_SASL_PASSWORD": PASSWORD, "KAFKA_SSL_CA_LOCATION": str(tls["ca"])}
    run = run_csv2lp([str(movebank_csv), *kafka_args(address, topic)], env=env)
    assert_all_acknowledged(run)
    assert PASSWORD not in run.stderr and PASSWORD not in run.stdout
    assert_exact(read_topic(tls_broker, topic, expected_lines=ROWS), reference)
    # A wrong password over TLS is refused as credentials, not as TLS, and is not printed either.
    run = run_csv2lp([str(movebank_csv), *kafka_args(address, topic)], env={**env, "KAFKA_SASL_PASSWORD": "wrong-Pa55"})
    assert_one_line_error(run, "refused to sign csv2lp in", "$KAFKA_SASL_USERNAME")
    assert "wrong-Pa55" not in run.stderr
    assert run.seconds < FAST_S


# -- TLS that fails -------------------------------------------------------------------------


def test_a_ca_that_did_not_sign_the_brokers_certificate_is_one_line_in_seconds(tls_broker, tls, topic,
                                                                               movebank_csv):
    address = ssl_address(tls_broker)
    run = run_csv2lp([str(movebank_csv), *kafka_args(address, topic)],
                     env={"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": str(tls["other_ca"])})
    line = assert_one_line_error(
        run, f"TLS with Kafka at {address} failed: the broker's certificate could not be verified with the CA in "
             f"ssl.ca.location {tls['other_ca']} (from $KAFKA_SSL_CA_LOCATION)", "certificate verify failed",
        "Set $KAFKA_SSL_CA_LOCATION, or ssl.ca.location in --kafka-config, to the CA certificate (PEM) that signed")
    assert "cannot reach any Kafka broker" not in line and "install ca-certificates" not in line, line
    assert run.seconds < FAST_S, run.stderr
    assert acknowledged_lines(run.stderr) in (None, 0), run.stderr
    assert tls_broker.records_in(topic) == 0


def test_a_wrong_ca_in_kafka_config_names_the_file(tls_broker, tls, topic, movebank_csv, tmp_path):
    config = tmp_path / "kafka.properties"
    config.write_text(f"security.protocol=SSL\nssl.ca.location={tls['other_ca']}\n")
    run = run_csv2lp([str(movebank_csv), *kafka_args(ssl_address(tls_broker), topic, "--kafka-config", str(config))])
    assert_one_line_error(run, f"the CA in ssl.ca.location {tls['other_ca']} (from --kafka-config {config})",
                          "certificate verify failed", "ssl.ca.location in --kafka-config")
    assert run.seconds < FAST_S, run.stderr
    assert tls_broker.records_in(topic) == 0


def test_without_a_ca_the_systems_cas_do_not_verify_a_private_one(tls_broker, topic, movebank_csv):
    run = run_csv2lp([str(movebank_csv), *kafka_args(ssl_address(tls_broker), topic)],
                     env={"KAFKA_SECURITY_PROTOCOL": "SSL"})
    assert_one_line_error(run, "could not be verified with the system's CA certificates (no ssl.ca.location was "
                               "given)", "certificate verify failed", "Set $KAFKA_SSL_CA_LOCATION")
    assert run.seconds < FAST_S, run.stderr
    assert tls_broker.records_in(topic) == 0


def test_the_right_ca_for_another_host_name_fails_verification_too(tls_broker, tls, topic, movebank_csv):
    # The certificate is for IP 127.0.0.1 only: through "localhost" librdkafka's hostname check refuses it.
    address = f"localhost:{tls_broker.ssl_port}"
    run = run_csv2lp([str(movebank_csv), *kafka_args(address, topic)],
                     env={"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": str(tls["ca"])})
    assert_one_line_error(run, f"TLS with Kafka at {address} failed", "certificate verify failed",
                          "check that the certificate is for the host --kafka-brokers names")
    assert run.seconds < FAST_S, run.stderr
    assert tls_broker.records_in(topic) == 0


# -- settings that cannot work, and the wrong protocol for the listener -----------------------


def test_a_ca_file_that_does_not_exist_is_one_line_before_connecting(tls, movebank_csv, tmp_path):
    # No broker at the address: the path is refused before any connection is tried.
    address = f"127.0.0.1:{free_loopback_port()}"
    missing = tmp_path / "no-such-ca.pem"
    run = run_csv2lp([str(movebank_csv), *kafka_args(address, "lines")],
                     env={"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": str(missing)})
    line = assert_one_line_error(run, f"$KAFKA_SSL_CA_LOCATION names {missing}, which does not exist: give the CA "
                                      f"certificate (PEM) that signed the broker's")
    assert "librdkafka" not in line and "cannot reach" not in line and ".." not in line, line
    assert run.seconds < FAST_S / 2, run.stderr


def test_a_ca_file_that_does_not_exist_in_kafka_config_names_the_file(tls, movebank_csv, tmp_path):
    address = f"127.0.0.1:{free_loopback_port()}"
    missing = tmp_path / "no-such-ca.pem"
    config = tmp_path / "kafka.properties"
    config.write_text(f"security.protocol=SASL_SSL\nsasl.username={USER}\nsasl.password={PASSWORD}\n"
                      f"ssl.ca.location={missing}\n")
    run = run_csv2lp([str(movebank_csv), *kafka_args(address, "lines", "--kafka-config", str(config))])
    line = assert_one_line_error(run, f"ssl.ca.location in --kafka-config {config} names {missing}, which does not "
                                      f"exist: give the CA certificate (PEM) that signed the broker's")
    assert "librdkafka" not in line and PASSWORD not in run.stderr, line
    assert run.seconds < FAST_S / 2, run.stderr


def _not_pem(tls, name: str) -> Path:
    """A file librdkafka cannot take as PEM, of the kind `name` says."""
    folder = tls["folder"]
    if name == "DER certificate":
        path = folder / "ca.der"
        openssl("x509", "-in", str(tls["ca"]), "-outform", "DER", "-out", str(path), cwd=folder)
    elif name == "DER key":
        path = folder / "server-key.der"
        openssl("pkey", "-in", str(folder / "server.key"), "-outform", "DER", "-out", str(path), cwd=folder)
    elif name == "a key, no certificate":
        path = folder / "server.key"
    elif name == "empty":
        path = folder / "empty.pem"
        path.write_bytes(b"")
    else:
        path = folder / "notes.txt"
        path.write_text("the CA is on the wiki\n")
    return path


def _librdkafka_refuses(properties: dict[str, str]) -> bool:
    """Whether librdkafka itself refuses these TLS files (it loads them when the client is made,
    before any connection)."""
    from confluent_kafka import KafkaException, Producer

    try:
        Producer({"bootstrap.servers": f"127.0.0.1:{free_loopback_port()}", "security.protocol": "SSL",
                  **properties})
    except KafkaException:
        return True
    return False


@pytest.mark.parametrize(("key", "name", "said"), [
    ("ssl.ca.location", "DER certificate", "which looks like DER, not the PEM librdkafka reads (`openssl x509 "
                                           "-inform DER -in {path} -out {path}.pem` converts it): give the CA "
                                           "certificate (PEM)"),
    ("ssl.ca.location", "a key, no certificate", "which holds no PEM block (-----BEGIN CERTIFICATE-----): give the "
                                                 "CA certificate (PEM)"),
    ("ssl.ca.location", "text", "which holds no PEM block (-----BEGIN CERTIFICATE-----)"),
    ("ssl.ca.location", "empty", "which is empty: give the CA certificate (PEM)"),
    ("ssl.certificate.location", "DER certificate", "which looks like DER, not the PEM librdkafka reads (`openssl "
                                                    "x509 -inform DER"),
    ("ssl.key.location", "DER key", "which looks like DER, not the PEM librdkafka reads (`openssl pkey -inform DER "
                                    "-in {path} -out {path}.pem` converts it): give this client's private key (PEM)"),
])
def test_a_tls_file_that_is_not_pem_is_one_line_and_librdkafka_refuses_it_too(tls, movebank_csv, tmp_path, key,
                                                                              name, said):
    # Before, librdkafka's words: "ssl.ca.location failed: ... no certificate or crl found", no file named.
    bad = _not_pem(tls, name)
    good = {"ssl.ca.location": str(tls["ca"]), "ssl.certificate.location": str(tls["folder"] / "server.pem"),
            "ssl.key.location": str(tls["folder"] / "server.key")}
    settings = {**good, key: str(bad)}
    assert not _librdkafka_refuses(good), "the PEM files themselves are refused: the test proves nothing"
    assert _librdkafka_refuses(settings), f"librdkafka takes {name} for {key}: csv2lp must not refuse it"
    config = tmp_path / "kafka.properties"
    config.write_text("security.protocol=SSL\n" + "".join(f"{k}={v}\n" for k, v in settings.items()))
    address = f"127.0.0.1:{free_loopback_port()}"
    run = run_csv2lp([str(movebank_csv), *kafka_args(address, "lines", "--kafka-config", str(config))])
    line = assert_one_line_error(run, f"{key} in --kafka-config {config} names {bad}, "
                                      f"{said.format(path=bad)}")
    assert "librdkafka refused" not in line and "cannot reach" not in line, line
    assert run.seconds < FAST_S / 2, run.stderr


def test_the_pem_files_csv2lp_lets_through_are_the_ones_librdkafka_takes(tls, movebank_csv, tmp_path):
    # The CA, this client's certificate and its key, all PEM: no refusal up front, so the run gets as
    # far as the missing broker (librdkafka takes the same files: the test above).
    config = tmp_path / "kafka.properties"
    config.write_text(f"security.protocol=SSL\nssl.ca.location={tls['ca']}\n"
                      f"ssl.certificate.location={tls['folder'] / 'server.pem'}\n"
                      f"ssl.key.location={tls['folder'] / 'server.key'}\n")
    address = f"127.0.0.1:{free_loopback_port()}"
    run = run_csv2lp([str(movebank_csv), *kafka_args(address, "lines", "--kafka-config", str(config))])
    assert_one_line_error(run, f"cannot reach any Kafka broker of --kafka-brokers {address}")


def test_no_tls_against_a_tls_listener_says_to_set_the_security_protocol(tls_broker, topic, movebank_csv):
    address = ssl_address(tls_broker)
    run = run_csv2lp([str(movebank_csv), *kafka_args(address, topic)])  # no $KAFKA_SECURITY_PROTOCOL: PLAINTEXT
    line = assert_one_line_error(run, f"the broker at {address} closed the connection during the handshake",
                                 "it may be a TLS listener", "Set $KAFKA_SECURITY_PROTOCOL=SSL (or SASL_SSL) and "
                                 "$KAFKA_SSL_CA_LOCATION")
    assert "Check the address" not in line, line
    assert run.seconds < FAST_S, run.stderr
    assert tls_broker.records_in(topic) == 0


def test_tls_against_a_plaintext_listener_says_to_check_the_security_protocol(tls_broker, tls, topic,
                                                                              movebank_csv):
    address = f"127.0.0.1:{tls_broker.port}"
    run = run_csv2lp([str(movebank_csv), *kafka_args(address, topic)],
                     env={"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": str(tls["ca"])})
    line = assert_one_line_error(run, f"the broker at {address} did not answer TLS", "it may be a plaintext listener",
                                 "Check $KAFKA_SECURITY_PROTOCOL")
    assert "Check the address" not in line, line
    assert run.seconds < FAST_S, run.stderr
    assert tls_broker.records_in(topic) == 0
