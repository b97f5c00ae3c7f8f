"""`csv2lp --influx-url` into a real InfluxDB 2 (v2.8.0, tests/support/influxdb2.py): the promises
of the direct-write path that need a database to prove.

- duplicate points written over two connections: the copy last in the file survives;
- a million generated Movebank rows land exactly, counted per series by the server;
- a request refused in the middle of an import (a field type conflict) stops the run,
  and the books' "confirmed" is what the database holds.

InfluxDB 2 answers 204 once the points are queryable, so counts are taken at once.
tests/test_influxdb2_direct.py covers the shared files, precision, bad token and org,
and --create-bucket on the same server.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pytest

from support.data import REPO
from support.influxdb2 import ORG, TOKEN, InfluxDB2Server
from support.movebank_gen import generate
from support.ordering import duplicates_csv, duplicates_flags, survivors_query, wrong_survivors

pytestmark = pytest.mark.influxdb2

CLI_TIMEOUT_S = 600.0
MILLION = 1_000_000


def csv2lp(server: InfluxDB2Server, source: Path, bucket: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "converter", "convert", str(source), *args,
               "--influx-url", server.url, "--org", ORG, "--bucket", bucket]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
                          stdin=subprocess.DEVNULL, env={**os.environ, "INFLUX_TOKEN": TOKEN})


def confirmed_count(stderr: str) -> int:
    [line] = [line for line in stderr.splitlines() if " lines confirmed by " in line]
    return int(line.split(" lines confirmed by ")[0].replace(",", ""))


# --- duplicate points -------------------------------------------------------------------------------


@pytest.mark.parametrize("gzip", ["--gzip", "--no-gzip"])
def test_two_connections_keep_the_last_copy_of_every_duplicate_point(influxdb2, influx2_bucket, tmp_path, gzip):
    source = duplicates_csv(tmp_path / "dups.csv", points=20_000)

    done = csv2lp(influxdb2, source, influx2_bucket, *duplicates_flags(), "--connections", "2",
                  "--batch-lines", "50", gzip)

    assert done.returncode == 0, done.stderr
    assert "20,000 duplicate points" in done.stderr and "on 2 connections" in done.stderr
    assert confirmed_count(done.stderr) == 40_000
    stored = influxdb2.influxql(survivors_query(), influx2_bucket)
    assert sum(len(series["values"]) for series in stored[0]["series"]) == 20_000
    assert wrong_survivors(stored) == []


# --- a million rows -----------------------------------------------------------------------------------


def per_individual(path: Path) -> dict[str, tuple[int, int, int, int]]:
    """{individual: (rows, min event-id, max event-id, sum of event-ids)}, read by Arrow's CSV reader
    (not csv2lp): with the count, the sum shows that every ID landed once."""
    table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
        include_columns=["individual-local-identifier", "event-id"],
        column_types={"event-id": pa.int64()}))
    grouped = table.group_by("individual-local-identifier").aggregate(
        [("event-id", "count"), ("event-id", "min"), ("event-id", "max"), ("event-id", "sum")])
    return {row["individual-local-identifier"]: (row["event-id_count"], row["event-id_min"], row["event-id_max"],
                                                 row["event-id_sum"]) for row in grouped.to_pylist()}


@pytest.mark.slow
def test_a_million_generated_rows_land_exactly(influxdb2, influx2_bucket, tmp_path):
    source = generate(MILLION, tmp_path / "movebank-1m.csv")
    expected = per_individual(source)
    assert sum(rows for rows, *_ in expected.values()) == MILLION and len(expected) == 20

    done = csv2lp(influxdb2, source, influx2_bucket, "--preset", "movebank", "--precision", "ms")

    assert done.returncode == 0, done.stderr
    assert "1,000,000 lines written" in done.stderr and confirmed_count(done.stderr) == MILLION
    results = influxdb2.influxql('SELECT count("event_id"), min("event_id"), max("event_id"), sum("event_id") '
                                 'FROM "movebank" GROUP BY "individual"', influx2_bucket)
    stored = {series["tags"]["individual"]: tuple(int(v) for v in series["values"][0][1:])
              for series in results[0]["series"]}
    assert stored == expected


# --- a refusal in the middle of an import -------------------------------------------------------------

@pytest.mark.slow
def test_a_refusal_mid_import_stops_the_run_and_the_books_match_the_database(influxdb2, influx2_bucket, tmp_path):
    """A float event_id at the file's last time: the first request with a line of that shard (a
    week, for a bucket that keeps data forever) is refused (422, field type conflict). Two
    individuals of 50,000 fixes each over the same year: the first one reaches that week
    half-way through the file."""
    source = generate(100_000, tmp_path / "two-animals.csv", individuals=2)
    last_ms = int(pc.max(pa_csv.read_csv(source, convert_options=pa_csv.ConvertOptions(
        include_columns=["timestamp"], column_types={"timestamp": pa.timestamp("ms")}))["timestamp"]).cast(pa.int64())
        .as_py())
    influxdb2.write(f"movebank event_id=1.5 {last_ms * 10**6}\n".encode(), influx2_bucket)

    done = csv2lp(influxdb2, source, influx2_bucket, "--preset", "movebank", "--precision", "ms")

    assert done.returncode == 1
    assert "Traceback" not in done.stderr and TOKEN not in done.stderr
    error = done.stderr.splitlines()[0]
    match = re.fullmatch(
        rf"csv2lp: error: {re.escape(influxdb2.url)} \(bucket {influx2_bucket}\) refused a write request: "
        r"HTTP 422 Unprocessable Entity: (?P<said>.*field type conflict.*)\. Stopped at the first failed request: "
        r"(?P<confirmed>[\d,]+) lines confirmed, (?P<unconfirmed>[\d,]+) NOT confirmed \((?P<refused>[\d,]+) in the "
        r"(refused request|(?P<requests>2) refused requests)(, (?P<not_sent>[\d,]+) not sent after the stop)?\)\.",
        error)
    assert match, error
    confirmed, unconfirmed, refused, not_sent = (int((match[k] or "0").replace(",", ""))
                                                 for k in ("confirmed", "unconfirmed", "refused", "not_sent"))
    assert 20_000 < confirmed < 80_000  # half-way, give or take the routing
    # The refused request, and the other connection's when it was in flight beside it (the week's
    # lines travel on both).
    assert unconfirmed == refused + not_sent and 0 < refused <= 5_000 * (2 if match["requests"] else 1)
    converted = confirmed + unconfirmed
    assert f"\n{converted:,} lines converted: {confirmed:,} written (confirmed by the server), {unconfirmed:,} NOT " \
           "confirmed\n" in done.stderr
    # Every confirmed line is in the database; of the refused request InfluxDB 2 may have kept the
    # lines of other shards (a partial write), never more. Every row has `visible`; the
    # conflicting point written above has not.
    [[_, stored]] = influxdb2.influxql('SELECT count("visible") FROM "movebank"', influx2_bucket)[0]["series"][0][
        "values"]
    assert confirmed <= stored <= confirmed + refused


# --- the server away in the middle of an import ---------------------------------------------------

OUTAGE_S = 20.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.slow
def test_server_away_mid_import_reading_stalls_memory_stays_flat_nothing_lost(private_influxdb2, tmp_path):
    """300,000 rows on stdin; InfluxDB 2 stopped for 20 s once the first points are in. csv2lp
    retries, stops reading (the feeder blocks on the full pipe), keeps its memory, and when
    the server is back every row lands, counted per series."""
    server = private_influxdb2
    source = generate(300_000, tmp_path / "big.csv")
    expected = per_individual(source)
    data = source.read_bytes()
    stderr_path = tmp_path / "stderr.txt"
    fed = [0]
    with open(stderr_path, "wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "converter", "convert", "-", "--preset", "movebank", "--precision", "ms",
             "--influx-url", server.url, "--org", ORG, "--bucket", server.bucket],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr,
            env={**os.environ, "INFLUX_TOKEN": TOKEN})

    def feed() -> None:
        assert child.stdin is not None
        try:
            for start in range(0, len(data), 1 << 20):
                child.stdin.write(data[start:start + (1 << 20)])
                fed[0] = start + (1 << 20)
            child.stdin.close()
        except BrokenPipeError:
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        deadline = time.monotonic() + 60
        while not server.count_per_series(server.bucket):
            assert time.monotonic() < deadline, "nothing arrived"
            time.sleep(0.2)
        server.stop()
        down_at = time.monotonic()
        samples: list[tuple[float, float, int]] = []  # (seconds into the outage, csv2lp RSS, bytes fed)
        while (into := time.monotonic() - down_at) < OUTAGE_S:
            samples.append((into, rss_mb(child.pid), fed[0]))
            time.sleep(0.5)
        server.start()
        status = child.wait(timeout=CLI_TIMEOUT_S)
        feeder.join(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)

    text = stderr_path.read_text()
    assert status == 0, text
    assert f"csv2lp: write to {server.url} failed (connection refused); retrying" in text
    assert confirmed_count(text) == 300_000
    settled = [s for s in samples if s[0] >= 5.0]  # the queues are full by then
    assert settled[-1][2] == settled[0][2] < len(data), "csv2lp kept reading while the server was away"
    assert max(s[1] for s in settled) - settled[0][1] < 20, f"RSS grew while the server was away: {samples}"
    stored = {series["tags"]["individual"]: tuple(int(v) for v in series["values"][0][1:]) for series in
              server.influxql('SELECT count("event_id"), min("event_id"), max("event_id"), sum("event_id") '
                              'FROM "movebank" GROUP BY "individual"')[0]["series"]}
    assert stored == expected
    print(f"\noutage: fed {settled[0][2] / 1e6:.0f} of {len(data) / 1e6:.0f} MB when reading stalled; "
          f"csv2lp RSS {min(s[1] for s in settled):.0f}-{max(s[1] for s in settled):.0f} MB while the server was away")


# --- the benchmark's code, on a tiny file (never its timings) ----------------------------------------


def test_the_direct_write_benchmark_runs_every_path(influxdb2, tmp_path):
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from benchmarks.datasets import generated
    from benchmarks.direct_write import PATHS, influxdb2_target_of, measure_direct_writes, table

    data = generated("base", 3_000, tmp_path)
    summary = measure_direct_writes(influxdb2_target_of(influxdb2), data, rounds=1, work_dir=tmp_path / "work",
                                    progress=lambda text: None)

    assert sorted(run.path for run in summary.runs) == sorted(PATHS)
    assert all(run.error is None and run.counted == 3_000 and run.note == "" for run in summary.runs)
    assert all(run.cpu_s > 0 and run.max_rss_mb > 0 for run in summary.runs)
    assert table(summary).count("\n| ") == 1 + len(PATHS)  # the header and a row per path
