"""A real InfluxDB 2 server for tests: `influxd` built by .ci/install-influxd2, on loopback, data in a temp dir.

The server is onboarded through `POST /api/v2/setup` with the same user, org, bucket and
admin token that docker-compose.yml's DOCKER_INFLUXDB_INIT_* variables give the stack's
InfluxDB on first boot; `compose_env()` hands those variables (and the INFLUX_* ones that
compose passes to Telegraf) to tests that run the shipped configs.

It speaks the v2 API (`/api/v2/write`, `/api/v2/query` Flux, the buckets API) and InfluxQL
on `/query?db=BUCKET` through the virtual DBRP mapping 2.x makes for every bucket. The
helpers use nothing but urllib, so the fixture adds no dependency. Every wait is bounded
and every server started here is stopped by a fixture finalizer, also when a test fails.
"""

from __future__ import annotations

import calendar
import csv
import gzip
import io
import json
import os
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.influxdb import free_loopback_port, quote_ident, quote_literal, split_into_requests
from support import server_process
from support.server_process import ServerProcess, running

INSTALL_SCRIPT = ".ci/install-influxd2"
INFLUXD2_VERSION = "v2.8.0"
DEFAULT_BIN_DIR = Path.home() / ".cache" / "csv2lp-bin"
START_TIMEOUT_S = 30.0
# influxd flushes the WAL and closes its engine on SIGINT; a large cache can take seconds.
STOP_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 60.0

# What docker-compose.yml sets from .env (DOCKER_INFLUXDB_INIT_*), with test values. The org
# and bucket are those of .env.example; the password must have 8+ characters for /setup.
USERNAME = "admin"
PASSWORD = "csv2lp-test-password"
ORG = "movebank"
BUCKET = "movebank"
TOKEN = "csv2lp-test-admin-token-0123456789abcdef"

# The whole range line protocol timestamps can take (REFERENCE.md), for Flux's range():
# Flux needs a start and `range(start: 0)` would hide points before 1970.
FLUX_ALL_TIME = "start: 1677-09-21T00:12:43.145224194Z, stop: 2262-04-11T23:47:16.854775807Z"

Row = dict[str, Any]
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # (measurement, sorted tag pairs)


class InfluxDB2Error(RuntimeError):
    """The server refused a request or could not be started; the message holds its answer."""


def find_influxd2_binary() -> Path | None:
    """The cached binary: $CSV2LP_BIN_DIR/influxd, else ~/.cache/csv2lp-bin/influxd."""
    binary = Path(os.environ.get("CSV2LP_BIN_DIR") or DEFAULT_BIN_DIR) / "influxd"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


def flux_string(value: str) -> str:
    """A Flux string literal: double quotes, with `\\`, `"` and `${` escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'


def rfc3339_to_ns(text: str) -> int:
    """Epoch nanoseconds of an RFC 3339 UTC time as Flux prints it (`2024-01-02T03:04:05.123Z`).

    Exact to the nanosecond (datetime stops at microseconds).
    """
    if not text.endswith("Z"):
        raise ValueError(f"expected a UTC time ending in Z, got {text!r}")
    whole, _, fraction = text[:-1].partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])


# Flux annotated CSV: how each #datatype becomes a Python value (an empty cell is null).
_FLUX_TYPES = {
    "long": int,
    "unsignedLong": int,
    "double": float,
    "boolean": lambda text: text == "true",
    "string": str,
    "dateTime:RFC3339": rfc3339_to_ns,
    "dateTime:RFC3339Nano": rfc3339_to_ns,
    "duration": int,
}


def parse_flux_csv(text: str) -> list[Row]:
    """The rows of a Flux annotated-CSV answer (annotations datatype, group, default).

    Each table block starts with its own #datatype line and header; a block whose header
    is `error,reference` is Flux reporting a failure after the 200 and raises. The
    annotation column (empty name) is dropped; times become epoch ns; an empty cell takes
    its column's #default, else is null (strings: "", which CSV cannot tell from null).
    """
    rows: list[Row] = []
    types: list[str] = []
    defaults: list[str] = []
    header: list[str] | None = None
    for record in csv.reader(io.StringIO(text)):
        if not record or record == [""]:
            header = None  # a blank line ends a table block
            continue
        if record[0] == "#datatype":
            types, defaults, header = record, [""] * len(record), None
            continue
        if record[0] == "#default":
            defaults = record
            continue
        if record[0].startswith("#"):
            continue
        if header is None:
            header = record
            continue
        if header[1:3] == ["error", "reference"]:
            raise InfluxDB2Error(f"Flux query failed: {record[1]}")
        row: Row = {}
        for name, kind, default, cell in zip(header, types, defaults, record):
            if name == "":
                continue
            cell = cell or default
            row[name] = None if cell == "" and kind != "string" else _FLUX_TYPES.get(kind, str)(cell)
        rows.append(row)
    return rows


class InfluxDB2Server(ServerProcess):
    """One `influxd` (2.x) process with its own port, bolt file, sqlite file and engine folder.

    `restart()` (or `stop()` then `start()`) keeps the port and the data, so a test can
    restart the server in the middle of an import and find what was acknowledged.

    Stopped with SIGINT, not SIGTERM: influxd 2.x shuts down cleanly (WAL closed, bolt
    closed) only on os.Interrupt; it does not catch SIGTERM, which ends it at once like a
    crash (kit/signals/context.go WithStandardSignals, v2.8.0).
    """

    error = InfluxDB2Error
    stop_signal = signal.SIGINT
    stop_timeout = STOP_TIMEOUT_S

    def __init__(self, root: Path | None = None, *, influxd: Path | None = None) -> None:
        found = influxd or find_influxd2_binary()
        if found is None:
            raise InfluxDB2Error(f"no influxd binary: run {INSTALL_SCRIPT}")
        super().__init__(root, prefix="influxdb2-")
        self.influxd = found
        self.http_port = free_loopback_port()
        self.org = ORG
        self.bucket = BUCKET
        self.token = TOKEN
        self.org_id: str | None = None

    def compose_env(self) -> dict[str, str]:
        """The variables docker-compose.yml sets: InfluxDB's DOCKER_INFLUXDB_INIT_* and Telegraf's INFLUX_*."""
        return {
            "DOCKER_INFLUXDB_INIT_MODE": "setup",
            "DOCKER_INFLUXDB_INIT_USERNAME": USERNAME,
            "DOCKER_INFLUXDB_INIT_PASSWORD": PASSWORD,
            "DOCKER_INFLUXDB_INIT_ORG": self.org,
            "DOCKER_INFLUXDB_INIT_BUCKET": self.bucket,
            "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN": self.token,
            "INFLUX_URL": self.url,
            "INFLUX_TOKEN": self.token,
            "INFLUX_ORG": self.org,
            "INFLUX_BUCKET": self.bucket,
        }

    # -- lifecycle -------------------------------------------------------------------

    def server_env(self) -> dict[str, str]:
        """influxd's settings, all as INFLUXD_* variables (they override any config file).

        The caller's INFLUXD_* are left out, and INFLUXD_CONFIG_PATH points at our own
        empty folder: influxd otherwise reads a config.{toml,yaml,json} from its working
        directory (kit/cli/viper.go, v2.8.0).
        """
        env = {key: value for key, value in os.environ.items() if not key.startswith("INFLUXD_")}
        config_dir = self.root / "config"
        config_dir.mkdir(exist_ok=True)
        env.update(
            {
                "INFLUXD_CONFIG_PATH": str(config_dir),
                "INFLUXD_BOLT_PATH": str(self.root / "influxd.bolt"),
                "INFLUXD_SQLITE_PATH": str(self.root / "influxd.sqlite"),
                "INFLUXD_ENGINE_PATH": str(self.root / "engine"),
                "INFLUXD_HTTP_BIND_ADDRESS": f"127.0.0.1:{self.http_port}",
                "INFLUXD_REPORTING_DISABLED": "true",  # no phone-home to usage.influxdata.com
                "INFLUXD_LOG_LEVEL": "warn",  # info logs every compaction; failures still show
                "INFLUXD_UI_DISABLED": "true",  # built without the UI assets anyway
                "INFLUXD_PPROF_DISABLED": "true",
                "INFLUXD_NO_TASKS": "true",  # no task scheduler: the tests run no tasks
                # The default, said out loud: every acknowledged write is fsynced to the WAL,
                # which the restart tests rely on.
                "INFLUXD_STORAGE_WAL_FSYNC_DELAY": "0s",
            }
        )
        return env

    def start(self, *, timeout: float = START_TIMEOUT_S) -> None:
        """Start influxd, wait until /health says pass, onboard it once; raise with the log tail otherwise."""
        self._refuse_if_running()
        began = self._spawn([str(self.influxd)], env=self.server_env(), cwd=self.root, ready=self._healthy,
                            waiting_for=f"pass {self.url}/health", timeout=timeout)
        self._onboard()
        self.last_start_seconds = time.monotonic() - began

    def restart(self) -> None:
        """Stop cleanly and start again on the same port with the same data."""
        self.stop()
        self.start()

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1.0) as response:
                return json.loads(response.read()).get("status") == "pass"
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
            return False

    def _onboard(self) -> None:
        """What DOCKER_INFLUXDB_INIT_MODE=setup does: first user, org, bucket (kept forever), token.

        Only on an empty server: after a restart `GET /api/v2/setup` says allowed=false.
        """
        status, answer = self.request("GET", "/api/v2/setup", auth=False)
        if status != 200:
            raise InfluxDB2Error(f"GET /api/v2/setup answered {status}: {answer.decode('utf-8', 'replace')}")
        if json.loads(answer)["allowed"]:
            setup = {"username": USERNAME, "password": PASSWORD, "org": self.org, "bucket": self.bucket,
                     "token": self.token}
            self.request_json("POST", "/api/v2/setup", setup, auth=False, expect=201)
        self.org_id = self.request_json("GET", "/api/v2/orgs", params={"org": self.org})["orgs"][0]["id"]

    # -- HTTP ------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        token: str | None = None,
    ) -> tuple[int, bytes]:
        """One HTTP request; returns (status, body) whatever the status. `token` overrides ours."""
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        if auth:
            request.add_header("Authorization", f"Token {token if token is not None else self.token}")
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def request_json(
        self,
        method: str,
        path: str,
        document: Any = None,
        *,
        params: dict[str, str] | None = None,
        auth: bool = True,
        expect: int = 200,
    ) -> Any:
        """A JSON request whose answer must have status `expect`; returns the parsed answer (or None)."""
        body = None if document is None else json.dumps(document).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, answer = self.request(method, path, params=params, body=body, headers=headers, auth=auth)
        if status != expect:
            raise InfluxDB2Error(f"{method} {path} answered {status}: {answer.decode('utf-8', 'replace').strip()}")
        return json.loads(answer) if answer.strip() else None

    def write(
        self,
        lines: bytes,
        bucket: str | None = None,
        *,
        precision: str = "ns",
        org: str | None = None,
        compress: bool = False,
    ) -> int:
        """POST line protocol to /api/v2/write in requests of whole lines; return the line count.

        Anything but 204 raises InfluxDB2Error with the server's answer and how many lines
        earlier requests had delivered. `compress` sends gzip bodies, as `influx write` and
        Telegraf's outputs.influxdb_v2 do.
        """
        params = {"org": org or self.org, "bucket": bucket or self.bucket, "precision": precision}
        written = 0
        for body in split_into_requests(lines):
            headers = {"Content-Type": "text/plain; charset=utf-8"}
            if compress:
                body, headers["Content-Encoding"] = gzip.compress(body, compresslevel=1), "gzip"
            status, answer = self.request("POST", "/api/v2/write", params=params, body=body, headers=headers)
            if status != 204:
                raise InfluxDB2Error(
                    f"/api/v2/write answered {status} after {written} lines were accepted: "
                    f"{answer.decode('utf-8', 'replace').strip()}"
                )
            written += (gzip.decompress(body) if compress else body).count(b"\n")
        return written

    # -- buckets ---------------------------------------------------------------------

    def bucket_id(self, name: str) -> str | None:
        """The ID of bucket `name` in our org, None when there is none (the server answers 404)."""
        status, answer = self.request("GET", "/api/v2/buckets", params={"orgID": self.org_id or "", "name": name})
        if status == 404:
            return None
        if status != 200:
            raise InfluxDB2Error(f"GET /api/v2/buckets answered {status}: {answer.decode('utf-8', 'replace')}")
        buckets = json.loads(answer)["buckets"]
        return buckets[0]["id"] if buckets else None

    def create_bucket(self, name: str) -> str:
        """A bucket that keeps data forever (like the stack's); returns its ID."""
        document = {"orgID": self.org_id, "name": name, "retentionRules": []}
        return self.request_json("POST", "/api/v2/buckets", document, expect=201)["id"]

    def delete_bucket(self, name: str) -> None:
        bucket_id = self.bucket_id(name)
        if bucket_id is None:
            raise InfluxDB2Error(f"no bucket {name!r} to delete")
        self.request_json("DELETE", f"/api/v2/buckets/{bucket_id}", expect=204)

    # -- InfluxQL (v1 compatibility API, virtual DBRP mapping) -----------------------

    def influxql(self, q: str, bucket: str | None = None, *, epoch: str = "ns") -> list[dict[str, Any]]:
        """InfluxQL through /query?db=BUCKET with our token; return its `results` list. Any error raises.

        2.x maps database BUCKET (retention policy autogen) to the bucket of that name by
        itself: the virtual DBRP mapping that the stack's Grafana dashboard relies on.
        """
        params = {"q": q, "db": bucket or self.bucket, "epoch": epoch}
        status, answer = self.request("POST", "/query", params=params, body=b"")
        text = answer.decode("utf-8", "replace")
        if status != 200:
            raise InfluxDB2Error(f"/query answered {status} for {q!r}: {text.strip()}")
        document = json.loads(answer)
        if "error" in document:
            raise InfluxDB2Error(f"/query failed for {q!r}: {document['error']}")
        results = document.get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxDB2Error(f"/query statement failed for {q!r}: {result['error']}")
        return results

    def points(self, measurement: str, bucket: str | None = None, *, tags: dict[str, str] | None = None) -> list[Row]:
        """Every point of `measurement` (of one series when `tags` are given) as {time, tag..., field...}, by InfluxQL.

        Time is in epoch ns. GROUP BY * keeps tags apart from fields; fields a point does
        not have come back null in SELECT * and are left out, as they are absent. Sorted
        by (time, tags), the same order as `flux_points`.
        """
        where = ""
        if tags:
            where = " WHERE " + " AND ".join(f"{quote_ident(k)} = {quote_literal(v)}" for k, v in sorted(tags.items()))
        results = self.influxql(f"SELECT * FROM {quote_ident(measurement)}{where} GROUP BY *", bucket)
        rows: list[Row] = []
        for result in results:
            for series in result.get("series", []):
                series_tags = {key: value for key, value in series.get("tags", {}).items() if value != ""}
                for values in series["values"]:
                    row = {column: value for column, value in zip(series["columns"], values) if value is not None}
                    row.update(series_tags)
                    rows.append(row)
        return sorted(rows, key=_point_order)

    def field_types(self, measurement: str, bucket: str | None = None) -> dict[str, str]:
        """{field key: "float" | "integer" | "unsigned" | "string" | "boolean"} from SHOW FIELD KEYS."""
        results = self.influxql(f"SHOW FIELD KEYS FROM {quote_ident(measurement)}", bucket)
        return {
            key: kind for result in results for series in result.get("series", []) for key, kind in series["values"]
        }

    # -- Flux ------------------------------------------------------------------------

    def flux(self, query: str) -> list[Row]:
        """Run a Flux query through /api/v2/query; return its rows parsed (see parse_flux_csv)."""
        document = {
            "query": query,
            "type": "flux",
            "dialect": {"header": True, "annotations": ["datatype", "group", "default"]},
        }
        status, answer = self.request(
            "POST",
            "/api/v2/query",
            params={"org": self.org},
            body=json.dumps(document).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/csv"},
        )
        text = answer.decode("utf-8", "replace")
        if status != 200:
            raise InfluxDB2Error(f"/api/v2/query answered {status}: {text.strip()}")
        return parse_flux_csv(text)

    def _flux_rows(self, bucket: str, measurement: str | None, tail: str = "") -> list[Row]:
        """Every stored value of `bucket` (of one measurement), one row per field value, then `tail`."""
        where = f"\n  |> filter(fn: (r) => r._measurement == {flux_string(measurement)})" if measurement else ""
        return self.flux(f"from(bucket: {flux_string(bucket)})\n  |> range({FLUX_ALL_TIME}){where}{tail}")

    def flux_points(self, measurement: str, bucket: str | None = None) -> list[Row]:
        """The same points as `points()`, read by Flux: {time, tag..., field...}, sorted alike.

        Assembled from one row per field value rather than by Flux's pivot(): in annotated
        CSV a null and an empty string look the same, and a pivoted point lacking a string
        field would gain an empty one.
        """
        points: dict[tuple[int, tuple[tuple[str, str], ...]], Row] = {}
        for row in self._flux_rows(bucket or self.bucket, measurement):
            tags = _tags_of(row)
            point = points.setdefault((row["_time"], tags), {"time": row["_time"], **dict(tags)})
            point[row["_field"]] = row["_value"]
        return sorted(points.values(), key=_point_order)

    def count_per_series(self, bucket: str | None = None, measurement: str | None = None) -> dict[SeriesKey, int]:
        """{(measurement, sorted tag pairs): number of points} over all time, counted by the server.

        A point is one timestamp of a series whatever fields it has: the fields are pivoted
        into one row per timestamp first, so a point missing a field still counts once.
        After pivot() the group key is the series (measurement and tags), and count() keeps
        only group-key columns and its own: every other column of its rows is a tag.
        """
        tail = (
            '\n  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
            # count() takes no time column: count a constant column added to every point.
            '\n  |> set(key: "_point", value: "1")'
            '\n  |> count(column: "_point")'
        )
        rows = self._flux_rows(bucket or self.bucket, measurement, tail)
        return {(row["_measurement"], _tags_of(row)): row["_point"] for row in rows}


# Columns of a Flux row that are neither tags nor the field's key and value.
_FLUX_META = frozenset({"result", "table", "_start", "_stop", "_time", "_measurement", "_field", "_value", "_point"})


def _tags_of(row: Row) -> tuple[tuple[str, str], ...]:
    """The tag pairs of a Flux row, sorted. A tag is never empty: an empty cell is a tag this series lacks."""
    return tuple(sorted((k, v) for k, v in row.items() if k not in _FLUX_META and v not in (None, "")))


def _point_order(row: Row) -> tuple[Any, ...]:
    return (row["time"], sorted((key, str(value)) for key, value in row.items()))


def require_influxd2() -> Path:
    """The built influxd; fail in CI (a missing install step must not pass quietly), skip elsewhere."""
    binary = find_influxd2_binary()
    if binary is not None:
        return binary
    where = os.environ.get("CSV2LP_BIN_DIR") or str(DEFAULT_BIN_DIR)
    reason = (
        f"no influxd (InfluxDB 2) binary in {where}: run {INSTALL_SCRIPT} "
        f"(builds {INFLUXD2_VERSION} from the Go module proxy)"
    )
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def influxdb2() -> Iterator[InfluxDB2Server]:
    """One onboarded InfluxDB 2 server for the whole session (do not stop it in a test)."""
    yield from running(InfluxDB2Server(influxd=require_influxd2()))


@pytest.fixture
def influx2_bucket(influxdb2: InfluxDB2Server) -> Iterator[str]:
    """A fresh, uniquely named bucket in the session server's org, deleted afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    influxdb2.create_bucket(name)
    try:
        yield name
    finally:
        if influxdb2.running and influxdb2.bucket_id(name) is not None:
            influxdb2.delete_bucket(name)


@pytest.fixture
def private_influxdb2() -> Iterator[InfluxDB2Server]:
    """An onboarded server of the test's own, free to be stopped and restarted; closed afterwards."""
    yield from running(InfluxDB2Server(influxd=require_influxd2()))


def recheck_short_count(server: InfluxDB2Server, count: Callable[[], int], expected: int) -> str:
    """A short count re-checked after a restart (server_process.recheck_short_count): 2.8.0 counted
    1,766 acknowledged points short for 21 s behind Telegraf."""
    return server_process.recheck_short_count(server, count, expected, name=f"InfluxDB {INFLUXD2_VERSION}")
