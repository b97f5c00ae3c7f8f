"""The InfluxDB v2 write path, end to end, against real servers.

A real Telegraf runs `inputs.influxdb_v2_listener` (InfluxDB 2's `/api/v2/write`, with a
token) and relays with `outputs.influxdb` into the real InfluxDB 1.6.7 of the session.
Lines reach the listener two ways:

- csv2lp's own direct write (`--influx-url`; the listener answers /ping as `Telegraf 1.39.3`,
  so csv2lp takes it for a v2 server and writes to `/api/v2/write`);
- a plain HTTP POST of csv2lp's output, made the way `influx write` makes it (gzip
  bodies of about 500 KB, `/api/v2/write?org=&bucket=&precision=`, one request at a
  time). The influx CLI itself cannot be built here (see README, "Writing to InfluxDB").

Every test reads the points back with InfluxQL and compares them, series by series,
with the source CSV read by Python's csv module.

The listener answers 204 once a write is in Telegraf's buffer, before InfluxDB has it,
so arrival is awaited by polling the database (bounded), and then checked to stay put.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.data import FISHERS, REPO, SAMPLE
from support.direct_write import expected_requests, first_request_refused, lines_per_connection
from support.influxdb import InfluxDB1Server, free_loopback_port, recheck_short_count
from support.movebank_points import MEASUREMENT, SERIES_QUERY, Fix, expected_series, series_of
from support.telegraf import StartTelegraf, TelegrafProcess

pytestmark = [pytest.mark.influxdb, pytest.mark.telegraf]

TOKEN = "listener-token-5be0c2d1"
ORG = "lab"
BUCKET = "movebank"
SAMPLE_ROWS = 1_200
FISHERS_ROWS = 47_347
ARRIVAL_TIMEOUT_S = 60.0
SETTLE_S = 2.5  # more than two of Telegraf's 1 s flush intervals
CLI_TIMEOUT_S = 240.0
INFLUX_WRITE_BODY_BYTES = 500_000  # `influx write` batches about this much per request
OUTAGE_S = 20.0


# --- the endpoint: Telegraf's v2 listener in front of InfluxDB 1.x -----------------------------


@dataclass
class V2Endpoint:
    url: str
    token: str
    server: InfluxDB1Server
    db: str
    telegraf: TelegrafProcess

    def count(self) -> int:
        results = self.server.query(f'SELECT count("event_id") FROM "{MEASUREMENT}"', db=self.db)
        series = results[0].get("series", [])
        return int(series[0]["values"][0][1]) if series else 0

    def wait_for_count(self, expected: int, timeout: float = ARRIVAL_TIMEOUT_S) -> float:
        """Seconds until exactly `expected` points are there; fails on more, or on fewer also after
        restarting influxd (1.6.7 can count short for a while: recheck_short_count)."""
        began = time.monotonic()
        while (count := self.count()) < expected:
            if time.monotonic() - began > timeout:
                try:
                    print("\n" + recheck_short_count(self.server, self.count, expected))
                except AssertionError as loss:
                    pytest.fail(f"{loss}\n{self.telegraf.log_tail()}")
                break
            time.sleep(0.2)
        waited = time.monotonic() - began
        time.sleep(SETTLE_S)
        assert self.count() == expected, "more points arrived than were written"
        return waited

    def series(self, epoch: str = "ms") -> dict[str, list[Fix]]:
        return series_of(self.server.query(SERIES_QUERY, db=self.db, epoch=epoch))

    def stop(self) -> None:
        self.telegraf.stop()

    def start_again(self) -> None:
        """Same config, so the same port; back when the listener says so."""
        since = self.telegraf.log_size()
        self.telegraf.start()
        self.telegraf.wait_for_log(r"Started HTTP listener service on", since=since)


StartEndpoint = Callable[..., V2Endpoint]


@pytest.fixture
def start_endpoint(telegraf_to_influxdb: StartTelegraf, influxdb: InfluxDB1Server, influx_db: str) -> StartEndpoint:
    """Factory: a running listener (token TOKEN) relaying into the fresh database `influx_db`."""

    def start(agent: dict[str, object] | None = None, **listener: object) -> V2Endpoint:
        port = free_loopback_port()
        settings = "".join(f"  {key} = {value}\n" for key, value in listener.items())
        telegraf = telegraf_to_influxdb(
            f'[[inputs.influxdb_v2_listener]]\n  service_address = "127.0.0.1:{port}"\n  token = "{TOKEN}"\n{settings}',
            # The whole fishers file fits in the buffer: a full buffer drops the oldest metrics.
            agent={"metric_batch_size": 5_000, "metric_buffer_limit": 200_000, **(agent or {})},
            name="v2-listener",
        )
        telegraf.wait_for_log(r"Started HTTP listener service on")
        return V2Endpoint(f"http://127.0.0.1:{port}", TOKEN, influxdb, influx_db, telegraf)

    return start


@pytest.fixture
def endpoint(start_endpoint: StartEndpoint) -> V2Endpoint:
    return start_endpoint()


# --- the two ways in -------------------------------------------------------------------------


def csv2lp_command(source: Path | str, endpoint: V2Endpoint, *extra: str) -> list[str]:
    return [sys.executable, "-m", "converter", "convert", str(source), "--preset", "movebank",
            "--influx-url", endpoint.url, "--org", ORG, "--bucket", BUCKET, *extra]


def direct_write(source: Path, endpoint: V2Endpoint, *extra: str, token: str = TOKEN) -> subprocess.CompletedProcess:
    return subprocess.run(csv2lp_command(source, endpoint, *extra), cwd=REPO, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL, env={**os.environ, "INFLUX_TOKEN": token})


def convert_to_bytes(source: Path, precision: str) -> bytes:
    done = subprocess.run([sys.executable, "-m", "converter", "convert", str(source), "--preset", "movebank",
                           "--precision", precision, "-q"], cwd=REPO, capture_output=True, timeout=CLI_TIMEOUT_S)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def post_like_influx_write(endpoint: V2Endpoint, lines: bytes, precision: str) -> int:
    """POST line protocol as `influx write --precision P` does; return the number of requests."""
    query = urllib.parse.urlencode({"org": ORG, "bucket": BUCKET, "precision": precision})
    requests = 0
    for body in bodies_of_whole_lines(lines, INFLUX_WRITE_BODY_BYTES):
        request = urllib.request.Request(f"{endpoint.url}/api/v2/write?{query}", data=gzip.compress(body),
                                         method="POST")
        request.add_header("Authorization", f"Token {endpoint.token}")
        request.add_header("Content-Encoding", "gzip")
        request.add_header("Content-Type", "text/plain; charset=utf-8")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 204
        requests += 1
    return requests


def bodies_of_whole_lines(lines: bytes, size: int) -> Iterator[bytes]:
    start = 0
    while start < len(lines):
        cut = lines.rfind(b"\n", start, start + size)
        end = len(lines) if start + size >= len(lines) else (cut + 1 if cut >= start else lines.index(b"\n", start) + 1)
        yield lines[start:end]
        start = end


def confirmed_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if " lines confirmed by " in line]
    assert len(lines) == 1, stderr
    return lines[0]


# --- direct write ----------------------------------------------------------------------------


def test_direct_write_of_the_sample_every_point_arrives(endpoint):
    done = direct_write(SAMPLE, endpoint)

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # lines go to the server, not to stdout
    assert confirmed_line(done.stderr).startswith(
        f"1,200 lines confirmed by {endpoint.url} (bucket {BUCKET}) in 2 request(s) on 2 connections (")
    assert "written through /api/v2/write of Telegraf 1.39.3" in done.stderr
    endpoint.wait_for_count(SAMPLE_ROWS)
    assert endpoint.series(epoch="ns") == expected_series(SAMPLE, epoch="ns")


@pytest.mark.slow
def test_direct_write_of_the_fishers_file_every_point_arrives(endpoint, shared_movebank):
    began = time.monotonic()
    done = direct_write(FISHERS, endpoint, "--precision", "ms", "--gzip")  # as to a server elsewhere
    cli_seconds = time.monotonic() - began

    assert done.returncode == 0, done.stderr
    confirmed = confirmed_line(done.stderr)
    # Requests of 5,000 lines whatever the read blocks: each connection fills its own.
    requests = expected_requests(FISHERS, precision="ms")
    assert confirmed.startswith(f"47,347 lines confirmed by {endpoint.url} (bucket {BUCKET}) in {requests} request(s)")
    waited = endpoint.wait_for_count(FISHERS_ROWS)
    assert endpoint.series() == expected_series(FISHERS)
    print(f"\nfishers direct write: csv2lp ran {cli_seconds:.2f} s in all; {confirmed}; "
          f"all in InfluxDB {waited:.2f} s after csv2lp exited")


@pytest.mark.parametrize(("precision", "unit_ms"), [("s", 1_000), ("ms", 1)])
def test_direct_write_precision_agrees_on_both_sides(endpoint, precision, unit_ms):
    expected = expected_series(SAMPLE, unit_ms=unit_ms)
    # The sample has sub-second times, so s and ms give different points.
    assert any(fix.time % 1000 for fixes in expected_series(SAMPLE).values() for fix in fixes)

    done = direct_write(SAMPLE, endpoint, "--precision", precision, "--batch-lines", "500")

    assert done.returncode == 0, done.stderr
    requests = expected_requests(SAMPLE, batch_lines=500, precision=precision)
    assert f"in {requests} request(s) on 2 connections" in confirmed_line(done.stderr)
    endpoint.wait_for_count(SAMPLE_ROWS)
    assert endpoint.series() == expected


# --- the `influx write` request, made by hand --------------------------------------------------


@pytest.mark.parametrize(("precision", "unit_ms"), [("s", 1_000), ("ms", 1)])
def test_influx_write_request_precision_agrees_on_both_sides(endpoint, precision, unit_ms):
    lines = convert_to_bytes(SAMPLE, precision)
    assert lines.count(b"\n") == SAMPLE_ROWS

    post_like_influx_write(endpoint, lines, precision)

    endpoint.wait_for_count(SAMPLE_ROWS)
    assert endpoint.series() == expected_series(SAMPLE, unit_ms=unit_ms)


@pytest.mark.slow
def test_influx_write_request_of_the_fishers_file_in_many_bodies(endpoint, shared_movebank):
    lines = convert_to_bytes(FISHERS, "ms")

    requests = post_like_influx_write(endpoint, lines, "ms")

    assert (len(lines), requests) == (9_979_807, 20)  # bodies of at most 500 KB, whole lines
    endpoint.wait_for_count(FISHERS_ROWS)
    assert endpoint.series() == expected_series(FISHERS)


def test_precision_that_disagrees_moves_every_point(endpoint):
    """Seconds sent as milliseconds: no error anywhere, every point lands in January 1970.

    This is what the two tests above guard against, and it shows their comparison can fail.
    """
    post_like_influx_write(endpoint, convert_to_bytes(SAMPLE, "s"), "ms")

    endpoint.wait_for_count(SAMPLE_ROWS)
    in_seconds = expected_series(SAMPLE, unit_ms=1_000)
    landed = endpoint.series()
    assert landed != in_seconds
    # Each point's time in ms is its true time in seconds: 1,000 times too early.
    assert landed == {individual: [Fix(fix.time // 1000, fix.event_id, fix.lat, fix.lon) for fix in fixes]
                      for individual, fixes in in_seconds.items()}


# --- retries: 429 from the listener, and the listener gone for 20 s ----------------------------


def test_429_from_a_full_listener_is_retried_until_everything_arrives(start_endpoint):
    # With max_undelivered_metrics the listener answers 429 while that many metrics have
    # not reached InfluxDB yet: 600 are accepted, the next 600 do not fit until they have.
    # A 3 s flush makes it unlikely that the first 600 reach InfluxDB in the few
    # milliseconds before the next 600 arrive (which would leave nothing to retry).
    endpoint = start_endpoint(agent={"flush_interval": "3s"}, max_undelivered_metrics=1_000)

    done = direct_write(SAMPLE, endpoint, "--batch-lines", "600")

    assert done.returncode == 0, done.stderr
    assert f"csv2lp: write to {endpoint.url} failed (HTTP 429 Too Many Requests); retrying (retry 1," in done.stderr
    assert "retried" in confirmed_line(done.stderr)
    endpoint.wait_for_count(SAMPLE_ROWS)
    assert endpoint.series(epoch="ns") == expected_series(SAMPLE, epoch="ns")


@pytest.mark.slow
def test_listener_down_for_20_s_mid_import_then_everything_arrives(endpoint, shared_movebank, tmp_path):
    """Half the file goes in, the listener stops, the rest waits in csv2lp's retries.

    The CSV comes through stdin, so the test decides when the second half exists.
    """
    data = gzip.decompress(FISHERS.read_bytes())
    half = data.index(b"\n", len(data) // 2) + 1
    stderr_path, stdout_path = tmp_path / "stderr.txt", tmp_path / "stdout.txt"
    with open(stderr_path, "wb") as stderr, open(stdout_path, "wb") as stdout:
        child = subprocess.Popen(
            csv2lp_command("-", endpoint, "--precision", "ms", "--batch-lines", "1000", "--block-size", "65536"),
            cwd=REPO, stdin=subprocess.PIPE, stdout=stdout, stderr=stderr,
            env={**os.environ, "INFLUX_TOKEN": TOKEN},
        )
    feeder: threading.Thread | None = None
    try:
        assert child.stdin is not None
        child.stdin.write(data[:half])
        child.stdin.flush()
        deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
        while endpoint.count() == 0:
            assert time.monotonic() < deadline, "nothing of the first half arrived"
            time.sleep(0.2)

        endpoint.stop()
        down_at = time.monotonic()
        before_outage = endpoint.count()

        def feed_the_rest() -> None:
            child.stdin.write(data[half:])
            child.stdin.close()

        feeder = threading.Thread(target=feed_the_rest, daemon=True)
        feeder.start()
        time.sleep(max(0.0, down_at + OUTAGE_S - time.monotonic()))
        endpoint.start_again()
        up_at = time.monotonic()

        status = child.wait(timeout=CLI_TIMEOUT_S)
        exited_at = time.monotonic()
        feeder.join(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)

    stderr_text = stderr_path.read_text()
    assert status == 0, stderr_text
    assert stdout_path.read_bytes() == b""
    assert f"csv2lp: write to {endpoint.url} failed (connection refused); retrying" in stderr_text
    confirmed = confirmed_line(stderr_text)
    assert confirmed.startswith(f"47,347 lines confirmed by {endpoint.url}") and "retried" in confirmed
    assert 0 < before_outage < FISHERS_ROWS
    waited = endpoint.wait_for_count(FISHERS_ROWS)
    assert endpoint.series() == expected_series(FISHERS)
    retry_notes = stderr_text.count("retrying (retry")
    print(f"\noutage: {before_outage:,} points in before the stop; listener down {up_at - down_at:.1f} s; "
          f"csv2lp finished {exited_at - up_at:.1f} s after it came back, after {retry_notes} retries; "
          f"all {FISHERS_ROWS:,} in InfluxDB {waited:.1f} s later")


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["env", "file"])
def test_bad_token_fails_clearly_and_never_shows_the_token(endpoint, tmp_path, via):
    bad = "wrong-token-41c7e9a0"
    extra: tuple[str, ...] = ()
    token = bad
    if via == "file":
        token_file = tmp_path / "token"
        token_file.write_text(bad + "\n")
        extra, token = ("--token-file", str(token_file)), ""

    done = direct_write(SAMPLE, endpoint, *extra, token=token)

    # The sample's lines on each connection: one request each; whichever goes first is refused,
    # the other is never sent.
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] in first_request_refused(
        f"{endpoint.url} (bucket {BUCKET})", "HTTP 401 Unauthorized",
        " The token was refused: check $INFLUX_TOKEN or --token-file.", lines_per_connection(SAMPLE))
    summary = done.stderr.splitlines()[1:]
    assert summary[0].startswith("1,200 rows read from 1 file in ")
    assert summary[1:] == ["1,200 lines converted: 0 written (confirmed by the server), 1,200 NOT confirmed",
                           "0 rows rejected"]
    assert bad not in done.stderr and bad not in done.stdout
    assert " lines confirmed by " not in done.stderr and "Traceback" not in done.stderr
    time.sleep(SETTLE_S)
    assert endpoint.count() == 0


def test_no_token_for_a_v2_server_is_an_error_before_anything_is_read(endpoint):
    done = direct_write(SAMPLE, endpoint, token="")

    assert done.returncode == 1
    assert done.stderr == (
        "csv2lp: error: no API token: set INFLUX_TOKEN, or give --token-file FILE (a file holding the token). "
        "csv2lp takes no token on the command line, where other users could see it in the process list.\n"
    )


def test_create_bucket_says_the_listener_has_no_buckets_api(endpoint):
    done = direct_write(SAMPLE, endpoint, "--create-bucket")

    assert done.returncode == 1
    assert done.stderr == (
        f"csv2lp: error: --create-bucket: the server at {endpoint.url} has no buckets API "
        f"({endpoint.url}/api/v2/buckets answered 404 Not Found). Only InfluxDB 2 has one; InfluxDB 3.x "
        "and Telegraf's influxdb_v2_listener accept writes on /api/v2/write but cannot create buckets. "
        "Create the bucket or database 'movebank' there yourself (3.x: influxdb3 create database), then run "
        "without --create-bucket.\n"
    )
    time.sleep(SETTLE_S)
    assert endpoint.count() == 0  # nothing was converted


def test_create_bucket_with_a_bad_token_says_the_token_was_refused(endpoint):
    done = direct_write(SAMPLE, endpoint, "--create-bucket", token="wrong-token-41c7e9a0")

    assert done.returncode == 1
    assert done.stderr == (
        f"csv2lp: error: --create-bucket: {endpoint.url}/api/v2/buckets answered HTTP 401 Unauthorized. "
        "The token was refused: check $INFLUX_TOKEN or --token-file.\n"
    )
    assert "wrong-token-41c7e9a0" not in done.stderr
