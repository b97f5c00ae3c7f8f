"""A fresh InfluxDB for each path: the test suite's own server classes, started per measurement.

The real-server code lives in tests/support/ (influxdb.py: Debian's influxd 1.6.7;
influxdb2.py: the influxd v2.8.0 that .ci/install-influxd2 builds). tests/ is a folder,
not an installed package, and its modules import each other as `support.*` (pytest puts
tests/ on sys.path): the benchmark does the same, so there is one copy of that code.

Each path gets a server of its own, started empty, so no path pays for the compactions
of the one before it and influxd's peak RSS is that path's. Points are counted with
InfluxQL on both (2.x maps database BUCKET to the bucket by itself), by a field every
Movebank point has.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from support.influxdb import INFLUXD as INFLUXD1, InfluxDB1Server, quote_ident  # noqa: E402
from support.influxdb2 import InfluxDB2Server, find_influxd2_binary  # noqa: E402

MEASUREMENT = "movebank"
SERVERS = ("v2", "v1")
SeriesCounts = dict[tuple[tuple[str, str], ...], int]


class ServerUnavailable(Exception):
    """The server binary is not on this machine; the message says how to get it."""


class Target:
    """One fresh server and the database (v1) or bucket (v2) a path writes into."""

    kind: str
    label: str
    write_path: str
    database: str

    def start(self) -> None:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        process = self.server.process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def url(self) -> str:
        return self.server.url

    def query(self, q: str) -> list[dict]:
        raise NotImplementedError

    def count(self, field: str) -> int:
        results = self.query(f"SELECT count({quote_ident(field)}) FROM {quote_ident(MEASUREMENT)}")
        series = results[0].get("series") if results else None
        return int(series[0]["values"][0][1]) if series else 0

    def count_per_series(self, field: str) -> SeriesCounts:
        """{sorted tag pairs: points}, counted by the server."""
        results = self.query(f"SELECT count({quote_ident(field)}) FROM {quote_ident(MEASUREMENT)} GROUP BY *")
        counts: SeriesCounts = {}
        for result in results:
            for series in result.get("series", []):
                tags = tuple(sorted((k, v) for k, v in series.get("tags", {}).items() if v != ""))
                counts[tags] = int(series["values"][0][1])
        return counts

    def restart(self) -> None:
        self.server.stop()
        self.server.start()

    def close(self) -> None:
        self.server.close()

    def write_params(self) -> dict[str, str]:
        raise NotImplementedError

    def write_headers(self) -> dict[str, str]:
        return {"Content-Type": "text/plain; charset=utf-8", "Content-Encoding": "gzip"}

    def telegraf_env(self) -> dict[str, str]:
        """The variables the shipped telegraf.conf's output reads."""
        raise NotImplementedError

    def direct_args(self) -> tuple[list[str], Mapping[str, str]]:
        """`csv2lp --influx-url` options and environment for this server."""
        raise NotImplementedError


class InfluxDB2Target(Target):
    kind = "v2"
    write_path = "/api/v2/write"

    def __init__(self) -> None:
        binary = find_influxd2_binary()
        if binary is None:
            raise ServerUnavailable("no influxd (InfluxDB 2) binary: run .ci/install-influxd2")
        self.server = InfluxDB2Server(influxd=binary)
        self.database = self.server.bucket  # onboarded on an empty server: fresh
        self.label = "InfluxDB 2 v2.8.0"

    def start(self) -> None:
        self.server.start()

    def query(self, q: str) -> list[dict]:
        return self.server.influxql(q)

    def write_params(self) -> dict[str, str]:
        return {"org": self.server.org, "bucket": self.database, "precision": "ns"}

    def write_headers(self) -> dict[str, str]:
        return {**super().write_headers(), "Authorization": f"Token {self.server.token}"}

    def telegraf_env(self) -> dict[str, str]:
        env = self.server.compose_env()
        return {key: env[key] for key in ("INFLUX_URL", "INFLUX_TOKEN", "INFLUX_ORG", "INFLUX_BUCKET")}

    def direct_args(self) -> tuple[list[str], Mapping[str, str]]:
        return (["--influx-url", self.url, "--org", self.server.org, "--bucket", self.database],
                {"INFLUX_TOKEN": self.server.token})


class InfluxDB1Target(Target):
    kind = "v1"
    write_path = "/write"

    def __init__(self) -> None:
        if not INFLUXD1.exists():
            raise ServerUnavailable(f"{INFLUXD1} not found: apt-get install influxdb (Debian's InfluxDB 1.6.7)")
        self.server = InfluxDB1Server()
        self.database = "movebank"
        self.label = "InfluxDB 1.6.7"

    def start(self) -> None:
        self.server.start()
        self.server.create_database(self.database)

    def query(self, q: str) -> list[dict]:
        return self.server.query(q, db=self.database)

    def restart(self) -> None:
        self.server.stop()
        self.server.start()  # the data folder stays; the database is in it

    def write_params(self) -> dict[str, str]:
        return {"db": self.database, "precision": "n"}

    def telegraf_env(self) -> dict[str, str]:
        return {"INFLUX_URL": self.url, "INFLUX_DATABASE": self.database}

    def direct_args(self) -> tuple[list[str], Mapping[str, str]]:
        # As the CLI's help says for 1.x (--bucket: the database). The server runs without
        # auth and ignores a token; csv2lp asks for one before it sends anything. 1.6.7 has
        # no /api/v2/write: this path lands only once csv2lp speaks /write (issue 17, item 4).
        return ["--influx-url", self.url, "--bucket", self.database], {"INFLUX_TOKEN": "unused-without-auth"}


def new_target(kind: str) -> Target:
    """A not yet started server of `kind` ("v2" or "v1") with an empty data folder."""
    if kind == "v2":
        return InfluxDB2Target()
    if kind == "v1":
        return InfluxDB1Target()
    raise ValueError(f"unknown server {kind!r}; choose from {', '.join(SERVERS)}")


def check_available(kind: str) -> None:
    """Raise ServerUnavailable when `kind`'s binary is missing (before anything is started)."""
    new_target(kind).server.close()

