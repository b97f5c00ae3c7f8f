"""The InfluxDB 1.x fixture itself: it stores what line protocol says, reports bad writes, keeps data over a restart.

Every later InfluxDB test trusts these helpers, so they are proven here against the
real server with hand-written line protocol whose meaning is known exactly.
"""

from __future__ import annotations

import pytest
from support.influxdb import InfluxDB1Server, InfluxDBError, require_influxd, split_into_requests

pytestmark = pytest.mark.influxdb

# Seconds since the epoch of 2024-01-02T03:04:05Z, written with precision s.
T0 = 1_704_164_645
NS = 1_000_000_000

EVERY_TYPE = (
    # A tag value with an escaped space, comma and equals sign; a tag key with a space.
    rb"probe,site=north\ field\,\ plot\=7,sensor\ kind=gps "
    rb'temp=21.5,count=42i,note="say \"hi\" to C:\\temp\\",ok=true,neg=-1.25e-3,big=-9223372036854775808i '
    + str(T0).encode()
    + b"\n"
    + b"probe,site=south,sensor\\ kind=gps temp=-0.1,count=0i,note=\"\",ok=F "
    + str(T0 + 1).encode()
    + b"\n"
)


def test_every_field_type_and_escaped_tag_comes_back_exactly(influxdb: InfluxDB1Server, influx_db: str) -> None:
    assert influxdb.write(EVERY_TYPE, influx_db, precision="s") == 2

    assert influxdb.points("probe", influx_db) == [
        {
            "time": T0 * NS,
            "site": "north field, plot=7",
            "sensor kind": "gps",
            "temp": 21.5,
            "count": 42,
            "note": 'say "hi" to C:\\temp\\',
            "ok": True,
            "neg": -1.25e-3,
            "big": -9223372036854775808,
        },
        {
            "time": (T0 + 1) * NS,
            "site": "south",
            "sensor kind": "gps",
            "temp": -0.1,
            "count": 0,
            "note": "",
            "ok": False,
        },
    ]
    assert influxdb.field_types("probe", influx_db) == {
        "big": "integer",
        "count": "integer",
        "neg": "float",
        "note": "string",
        "ok": "boolean",
        "temp": "float",
    }


@pytest.mark.parametrize(
    ("precision", "timestamp", "expected_ns"),
    [
        ("ns", 1_704_164_645_123_456_789, 1_704_164_645_123_456_789),
        ("us", 1_704_164_645_123_456, 1_704_164_645_123_456_000),
        ("ms", 1_704_164_645_123, 1_704_164_645_123_000_000),
        ("s", 1_704_164_645, 1_704_164_645_000_000_000),
    ],
)
def test_write_precision_scales_the_timestamp(
    influxdb: InfluxDB1Server, influx_db: str, precision: str, timestamp: int, expected_ns: int
) -> None:
    influxdb.write(f"clock v=1 {timestamp}\n".encode(), influx_db, precision=precision)
    assert [point["time"] for point in influxdb.points("clock", influx_db)] == [expected_ns]


def test_malformed_line_is_an_error_not_a_silent_drop(influxdb: InfluxDB1Server, influx_db: str) -> None:
    body = b"good v=1 1\nthis line has no field set\ngood v=2 2\n"
    with pytest.raises(InfluxDBError, match=r"400.*partial write.*unable to parse"):
        influxdb.write(body, influx_db, precision="ns")


def test_field_type_conflict_is_an_error(influxdb: InfluxDB1Server, influx_db: str) -> None:
    influxdb.write(b"typed v=1i 1\n", influx_db)
    with pytest.raises(InfluxDBError, match="field type conflict"):
        influxdb.write(b"typed v=1.5 2\n", influx_db)


def test_query_error_raises(influxdb: InfluxDB1Server, influx_db: str) -> None:
    with pytest.raises(InfluxDBError, match="error parsing query"):
        influxdb.query("SELEKT nonsense", db=influx_db)


def test_each_test_gets_its_own_empty_database(influxdb: InfluxDB1Server, influx_db: str) -> None:
    assert influx_db.startswith("test_")
    assert influxdb.points("probe", influx_db) == []
    databases = [row[0] for row in influxdb.query("SHOW DATABASES")[0]["series"][0]["values"]]
    assert influx_db in databases


def test_large_writes_are_cut_into_requests_of_whole_lines(influxdb: InfluxDB1Server, influx_db: str) -> None:
    lines = b"".join(b"bulk,k=%d v=%di %d\n" % (i % 3, i, i) for i in range(12_001))
    bodies = list(split_into_requests(lines))
    assert [body.count(b"\n") for body in bodies] == [5_000, 5_000, 2_001]
    assert all(body.endswith(b"\n") for body in bodies)

    assert influxdb.write(lines, influx_db, precision="ns") == 12_001
    count = influxdb.query('SELECT count("v") FROM "bulk"', db=influx_db)[0]["series"][0]["values"][0][1]
    assert count == 12_001


def test_data_survives_stop_and_restart(private_influxdb: InfluxDB1Server) -> None:
    server = private_influxdb
    server.create_database("kept")
    server.write(EVERY_TYPE, "kept", precision="s")
    before = server.points("probe", "kept")

    server.stop()
    assert not server.running
    server.start()

    assert server.running
    assert server.points("probe", "kept") == before
    assert len(before) == 2


def test_start_failure_shows_the_server_log(tmp_path) -> None:
    require_influxd()
    server = InfluxDB1Server(tmp_path)
    server.write_config()
    # A config that influxd cannot parse makes it exit at once; the error must say why.
    server.config_path.write_text("[http\n")
    server.write_config = lambda: None  # type: ignore[method-assign]
    try:
        with pytest.raises(InfluxDBError, match=r"exited with status .*\n--- last .* bytes of .*influxd\.log"):
            server.start(timeout=10)
    finally:
        server.close()


def test_points_of_one_series_selected_by_its_tags(influxdb: InfluxDB1Server, influx_db: str) -> None:
    # A lone backslash in a tag value is literal. InfluxDB 1.x unescapes only backslash-comma,
    # backslash-equals and backslash-space in tags: a doubled backslash would stay doubled.
    influxdb.write(EVERY_TYPE + b"probe,site=O'Hara\\ \\yard,sensor\\ kind=gps temp=3 5\n", influx_db, precision="s")

    north = influxdb.points("probe", influx_db, tags={"site": "north field, plot=7", "sensor kind": "gps"})
    quoted = influxdb.points("probe", influx_db, tags={"site": "O'Hara \\yard"})

    assert [(p["time"], p["temp"]) for p in north] == [(T0 * NS, 21.5)]
    assert [(p["time"], p["site"], p["temp"]) for p in quoted] == [(5 * NS, "O'Hara \\yard", 3)]


def test_a_count_still_short_after_a_restart_is_called_a_loss(private_influxdb):
    from support.influxdb import recheck_short_count

    server = private_influxdb
    server.create_database("short")
    lines = b"".join(b"m v=%di %d\n" % (i, T0 + i) for i in range(10))
    assert server.write(lines, "short", precision="s") == 10

    def count() -> int:
        series = server.query('SELECT count("v") FROM "m"', db="short")[0].get("series", [])
        return series[0]["values"][0][1] if series else 0

    assert recheck_short_count(server, count, 10) == ""  # complete: no restart, nothing to say
    with pytest.raises(AssertionError, match=r"^2 of 12 points missing, also after restarting influxd "
                                             r"\(counted 10 before the restart\): a loss$"):
        recheck_short_count(server, count, 12)
    assert server.running and count() == 10  # restarted, and the data kept
