"""csv2lp's direct write (`--influx-url`) into a real InfluxDB 2, counted and compared with the CSV.

`python -m converter FILE --preset movebank --influx-url URL --org ORG --bucket B` with the
token in $INFLUX_TOKEN, into a fresh bucket of the session's InfluxDB 2 server. Each test
then counts the points per series on the server (Flux) and reads every point's core
fields back (InfluxQL through the bucket's DBRP mapping), and compares both with the
source CSV read by Python's csv module. InfluxDB 2 answers 204 only once the points are
queryable, so there is no waiting for arrival.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.data import ALBATROSSES, FISHERS, REPO, SAMPLE, epoch_ms, read_rows
from support.direct_write import first_request_refused, lines_per_connection
from support.influxdb2 import ORG, TOKEN, InfluxDB2Server, SeriesKey

pytestmark = pytest.mark.influxdb2

MEASUREMENT = "movebank"
CLI_TIMEOUT_S = 300.0
BATCH_LINES = 5_000  # csv2lp's default --batch-lines

# The movebank preset's tags (converter/presets/movebank.toml): tag key -> CSV column.
PRESET_TAGS = {
    "study": "study-name",
    "individual": "individual-local-identifier",
    "tag": "tag-local-identifier",
    "taxon": "individual-taxon-canonical-name",
    "sensor": "sensor-type",
}
CORE_FIELDS = ("event_id", "lat", "lon", "visible")


# --- the source, read independently ----------------------------------------------------------


def series_of(row: dict[str, str]) -> SeriesKey:
    return (MEASUREMENT, tuple(sorted((tag, row[column]) for tag, column in PRESET_TAGS.items() if row.get(column))))


def core_fields(row: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {"event_id": int(row["event-id"]), "visible": row["visible"] == "true"}
    if row["location-lat"]:
        values["lat"] = float(row["location-lat"])
    if row["location-long"]:
        values["lon"] = float(row["location-long"])
    return values


def expected_points(path: Path, *, unit_ms: int) -> dict[SeriesKey, dict[int, dict[str, Any]]]:
    """{series: {time in ns: core fields}} as InfluxDB must hold them.

    Times are floored to the precision's unit. Two rows of one series at the same time are
    one point: InfluxDB merges their fields, the later row's value winning.
    """
    points: dict[SeriesKey, dict[int, dict[str, Any]]] = {}
    for row in read_rows(path):
        time_ns = epoch_ms(row["timestamp"]) // unit_ms * unit_ms * 1_000_000
        points.setdefault(series_of(row), {}).setdefault(time_ns, {}).update(core_fields(row))
    return points


def stored_points(server: InfluxDB2Server, bucket: str) -> dict[SeriesKey, dict[int, dict[str, Any]]]:
    """The same shape, read back with InfluxQL (one query, GROUP BY every tag)."""
    fields = ", ".join(f'"{name}"' for name in CORE_FIELDS)
    results = server.influxql(f'SELECT {fields} FROM "{MEASUREMENT}" GROUP BY *', bucket)
    points: dict[SeriesKey, dict[int, dict[str, Any]]] = {}
    for series in results[0].get("series", []):
        key = (MEASUREMENT, tuple(sorted((k, v) for k, v in series["tags"].items() if v != "")))
        for values in series["values"]:
            row = dict(zip(series["columns"], values))
            time_ns = row.pop("time")
            points.setdefault(key, {})[time_ns] = {k: v for k, v in row.items() if v is not None}
    return points


def counts(points: dict[SeriesKey, dict[int, dict[str, Any]]]) -> dict[SeriesKey, int]:
    return {series: len(times) for series, times in points.items()}


# --- the command -----------------------------------------------------------------------------


def direct_write(server: InfluxDB2Server, source: Path, bucket: str, *extra: str,
                 token: str = TOKEN, org: str = ORG, env: dict[str, str] | None = None,
                 ) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "converter", str(source), "--preset", MEASUREMENT,
               "--influx-url", server.url, "--org", org, "--bucket", bucket, *extra]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INFLUX_")}
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
                          stdin=subprocess.DEVNULL, env={**clean, "INFLUX_TOKEN": token, **(env or {})})


def confirmed_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if " lines confirmed by " in line]
    assert len(lines) == 1, stderr
    return lines[0]


def assert_landed_exactly(server: InfluxDB2Server, bucket: str, source: Path, *, unit_ms: int) -> None:
    expected = expected_points(source, unit_ms=unit_ms)
    # Counted by the server per series (Flux), then every point's core fields (InfluxQL).
    assert server.count_per_series(bucket, MEASUREMENT) == counts(expected)
    assert stored_points(server, bucket) == expected


# --- every point of each file ------------------------------------------------------------------


@pytest.mark.parametrize(("precision", "unit_ms"), [("ms", 1), ("s", 1_000)])
def test_sample_lands_exactly(influxdb2: InfluxDB2Server, influx2_bucket: str, precision: str, unit_ms: int) -> None:
    rows = len(read_rows(SAMPLE))
    # The sample has sub-second times, so s and ms give different points: the test can tell them apart.
    assert any(epoch_ms(row["timestamp"]) % 1000 for row in read_rows(SAMPLE))

    done = direct_write(influxdb2, SAMPLE, influx2_bucket, "--precision", precision)

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    # Each connection's share of the sample fits one request.
    assert confirmed_line(done.stderr).startswith(
        f"{rows:,} lines confirmed by {influxdb2.url} (bucket {influx2_bucket}) in 2 request(s) on 2 connections"
    )
    assert_landed_exactly(influxdb2, influx2_bucket, SAMPLE, unit_ms=unit_ms)


def test_precision_that_disagrees_would_be_caught(influxdb2: InfluxDB2Server, influx2_bucket: str) -> None:
    """The comparison above can fail: seconds where the CSV has milliseconds differ from it."""
    done = direct_write(influxdb2, SAMPLE, influx2_bucket, "--precision", "s")
    assert done.returncode == 0, done.stderr
    assert stored_points(influxdb2, influx2_bucket) != expected_points(SAMPLE, unit_ms=1)


@pytest.mark.slow
@pytest.mark.parametrize(("precision", "unit_ms"), [("ms", 1), ("s", 1_000)])
def test_fishers_file_lands_exactly(
    influxdb2: InfluxDB2Server, influx2_bucket: str, shared_movebank: Path, precision: str, unit_ms: int
) -> None:
    done = direct_write(influxdb2, FISHERS, influx2_bucket, "--precision", precision)

    assert done.returncode == 0, done.stderr
    assert confirmed_line(done.stderr).startswith(
        f"47,347 lines confirmed by {influxdb2.url} (bucket {influx2_bucket})"
    )
    assert_landed_exactly(influxdb2, influx2_bucket, FISHERS, unit_ms=unit_ms)


@pytest.mark.parametrize(("precision", "unit_ms"), [("ms", 1), ("s", 1_000)])
def test_albatross_file_lands_exactly(
    influxdb2: InfluxDB2Server, influx2_bucket: str, shared_movebank: Path, precision: str, unit_ms: int
) -> None:
    done = direct_write(influxdb2, ALBATROSSES, influx2_bucket, "--precision", precision)

    assert done.returncode == 0, done.stderr
    assert confirmed_line(done.stderr).startswith(
        f"1,676 lines confirmed by {influxdb2.url} (bucket {influx2_bucket}) in 2 request(s) on 2 connections"
    )
    assert_landed_exactly(influxdb2, influx2_bucket, ALBATROSSES, unit_ms=unit_ms)


# --- values beyond the core fields, spot-checked ---------------------------------------------


def test_albatross_columns_keep_their_values_and_types(
    influxdb2: InfluxDB2Server, influx2_bucket: str, shared_movebank: Path
) -> None:
    """Quoted integers stay integers, names with spaces and parentheses become field keys.

    The second timestamp column (eobs:start-timestamp) stays a string field.
    """
    done = direct_write(influxdb2, ALBATROSSES, influx2_bucket, "--precision", "ms")
    assert done.returncode == 0, done.stderr
    rows = read_rows(ALBATROSSES)
    wind_u = "ECMWF ERA5 SL Wind (10 m above Ground U Component)"

    for row in (rows[0], rows[len(rows) // 2], rows[-1]):
        tags = dict(series_of(row)[1])
        time_ns = epoch_ms(row["timestamp"]) * 1_000_000
        [point] = [p for p in influxdb2.points(MEASUREMENT, influx2_bucket, tags=tags) if p["time"] == time_ns]
        assert point["event_id"] == int(row["event-id"])
        assert point["eobs_battery_voltage"] == int(row["eobs:battery-voltage"])
        assert point["eobs_key_bin_checksum"] == int(row["eobs:key-bin-checksum"])
        assert point["eobs_start_timestamp"] == row["eobs:start-timestamp"]
        assert point["eobs_status"] == row["eobs:status"]
        assert point["heading"] == float(row["heading"])
        if row[wind_u]:
            assert point["ecmwf_era5_sl_wind_10_m_above_ground_u_component"] == float(row[wind_u])

    types = influxdb2.field_types(MEASUREMENT, influx2_bucket)
    assert (types["event_id"], types["eobs_battery_voltage"], types["eobs_start_timestamp"], types["visible"]) == (
        "integer", "integer", "string", "boolean"
    )
    assert types["ecmwf_era5_sl_wind_10_m_above_ground_u_component"] == "float"


@pytest.mark.slow
def test_fishers_rows_without_a_fix_and_with_a_classification(
    influxdb2: InfluxDB2Server, influx2_bucket: str, shared_movebank: Path
) -> None:
    done = direct_write(influxdb2, FISHERS, influx2_bucket, "--precision", "ms")
    assert done.returncode == 0, done.stderr
    rows = read_rows(FISHERS)
    no_fix = next(row for row in rows if not row["location-lat"])
    classified = next(row for row in rows if row["behavioural-classification"])

    for row in (no_fix, classified, rows[-1]):
        tags = dict(series_of(row)[1])
        time_ns = epoch_ms(row["timestamp"]) * 1_000_000
        [point] = [p for p in influxdb2.points(MEASUREMENT, influx2_bucket, tags=tags) if p["time"] == time_ns]
        assert point["event_id"] == int(row["event-id"])
        assert ("lat" in point, "lon" in point) == (bool(row["location-lat"]), bool(row["location-long"]))
        if row["behavioural-classification"]:
            assert point["behavioural_classification"] == row["behavioural-classification"]
        if row["eobs:battery-voltage"]:
            assert point["eobs_battery_voltage"] == int(row["eobs:battery-voltage"])


# --- refusals and known defects ----------------------------------------------------------------


def test_a_bad_org_fails_clearly_and_writes_nothing(influxdb2: InfluxDB2Server, influx2_bucket: str) -> None:
    done = direct_write(influxdb2, SAMPLE, influx2_bucket, org="no-such-org")

    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[0] in first_request_refused(
        f"{influxdb2.url} (bucket {influx2_bucket})", 'HTTP 404 Not Found: organization name "no-such-org" not found',
        " Check --bucket and --org (or add --create-bucket on InfluxDB 2).", lines_per_connection(SAMPLE)
    ), done.stderr
    assert "Traceback" not in done.stderr
    assert TOKEN not in done.stderr + done.stdout
    assert influxdb2.count_per_series(influx2_bucket) == {}


def test_a_bad_token_fails_clearly_and_writes_nothing(influxdb2: InfluxDB2Server, influx2_bucket: str) -> None:
    bad = "wrong-token-41c7e9a0"
    done = direct_write(influxdb2, SAMPLE, influx2_bucket, token=bad)

    assert done.returncode == 1
    assert done.stderr.splitlines()[0] in first_request_refused(
        f"{influxdb2.url} (bucket {influx2_bucket})", "HTTP 401 Unauthorized: unauthorized access",
        " The token was refused: check $INFLUX_TOKEN or --token-file.", lines_per_connection(SAMPLE)
    ), done.stderr
    assert bad not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert influxdb2.count_per_series(influx2_bucket) == {}


def test_the_token_is_used_when_a_1x_user_is_set_too(influxdb2: InfluxDB2Server, influx2_bucket: str) -> None:
    """Regression: with $INFLUX_USERNAME set (for the 1.x servers of the same shell) $INFLUX_TOKEN was
    ignored and the run failed with "no API token: set INFLUX_TOKEN"."""
    done = direct_write(influxdb2, SAMPLE, influx2_bucket, "--precision", "ms",
                        env={"INFLUX_USERNAME": "writer", "INFLUX_PASSWORD": "writer-pw-93bb2d10"})

    assert done.returncode == 0, done.stderr
    assert "writer-pw-93bb2d10" not in done.stderr + done.stdout
    assert_landed_exactly(influxdb2, influx2_bucket, SAMPLE, unit_ms=1)


def test_a_1x_user_without_a_token_is_told_what_a_2x_server_needs(
        influxdb2: InfluxDB2Server, influx2_bucket: str) -> None:
    done = direct_write(influxdb2, SAMPLE, influx2_bucket, token="",
                        env={"INFLUX_USERNAME": "writer", "INFLUX_PASSWORD": "writer-pw-93bb2d10"})

    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        "csv2lp: error: no API token: set INFLUX_TOKEN, or give --token-file FILE (a file holding the token). "
        "$INFLUX_USERNAME/$INFLUX_PASSWORD sign in to InfluxDB 1.x only. csv2lp takes no token on the command "
        "line, where other users could see it in the process list.")
    assert influxdb2.count_per_series(influx2_bucket) == {}


def test_a_bad_token_stops_at_the_first_refused_request(
    influxdb2: InfluxDB2Server, influx2_bucket: str, shared_movebank: Path
) -> None:
    done = direct_write(influxdb2, FISHERS, influx2_bucket, "--precision", "ms", token="wrong-token-41c7e9a0")

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert influxdb2.count_per_series(influx2_bucket) == {}
    # One request was refused and none followed it: what had been converted by then is "not
    # sent", and the conversion stopped (the rest of the file was never turned into lines).
    refusal = done.stderr.splitlines()[0]
    counts = refusal.split("Stopped at the first failed request: ", 1)[1]
    converted = int(counts.split(" lines confirmed, ", 1)[1].split(" NOT")[0].replace(",", ""))
    refused = int(counts.split("NOT confirmed (", 1)[1].split(" in the refused request")[0].replace(",", ""))
    assert 0 < refused <= BATCH_LINES and refused < converted < 47_347, refusal
    assert counts == (f"0 lines confirmed, {converted:,} NOT confirmed ({refused:,} in the refused request, "
                      f"{converted - refused:,} not sent after the stop)."), refusal
    assert f"\n{converted:,} lines converted: 0 written (confirmed by the server), {converted:,} NOT confirmed\n" \
        in done.stderr


def test_a_refused_write_is_not_counted_as_written(influxdb2: InfluxDB2Server, influx2_bucket: str) -> None:
    done = direct_write(influxdb2, SAMPLE, influx2_bucket, token="wrong-token-41c7e9a0")

    assert done.returncode == 1
    assert "NOT confirmed" in done.stderr, done.stderr
    assert "\n1,200 lines written\n" not in done.stderr
    assert "\n1,200 lines converted: 0 written (confirmed by the server), 1,200 NOT confirmed\n" in done.stderr


def test_create_bucket_creates_a_missing_bucket(influxdb2: InfluxDB2Server) -> None:
    name = "created_by_csv2lp"
    assert influxdb2.bucket_id(name) is None
    try:
        done = direct_write(influxdb2, SAMPLE, name, "--create-bucket", "--precision", "ms")

        assert done.returncode == 0, done.stderr
        assert done.stderr.startswith(f"csv2lp: created bucket '{name}' in org '{ORG}' at {influxdb2.url}\n")
        assert influxdb2.bucket_id(name) is not None
        assert_landed_exactly(influxdb2, name, SAMPLE, unit_ms=1)
    finally:
        if influxdb2.bucket_id(name) is not None:
            influxdb2.delete_bucket(name)


def test_create_bucket_leaves_an_existing_bucket_and_its_data(influxdb2: InfluxDB2Server, influx2_bucket: str) -> None:
    influxdb2.write(b"kept v=1 1\n", influx2_bucket)

    done = direct_write(influxdb2, SAMPLE, influx2_bucket, "--create-bucket", "--precision", "ms")

    assert done.returncode == 0, done.stderr
    assert influxdb2.count_per_series(influx2_bucket, "kept") == {("kept", ()): 1}
    assert_landed_exactly(influxdb2, influx2_bucket, SAMPLE, unit_ms=1)
