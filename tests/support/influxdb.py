"""A real InfluxDB 1.x server for tests: Debian's `influxd` on loopback, data in a temp dir.

The server speaks the v1 HTTP API only (`/ping`, `/write`, `/query`); the helpers here
use nothing but urllib so the fixture adds no dependency. Every wait is bounded and
every server started here is stopped by a fixture finalizer, also when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support import server_process
from support.server_process import ServerProcess, running

INFLUXD = Path("/usr/bin/influxd")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 60.0
LINES_PER_WRITE = 5_000

# /write in 1.x takes n|u|ms|s (newer releases also take ns/us); translate ours.
_WRITE_PRECISION = {"ns": "n", "n": "n", "us": "u", "u": "u", "ms": "ms", "s": "s"}

_CONFIG_TEMPLATE = """\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  # No fsync delay games: a test that restarts the server must find every
  # acknowledged write in the WAL.
  wal-fsync-delay = "0s"

[monitor]
  # No _internal database: a test server holds only what the tests write.
  store-enabled = false

[retention]
  enabled = false

[shard-precreation]
  enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false
"""


class InfluxDBError(RuntimeError):
    """The server refused a request or could not be started; the message holds its answer."""


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes, with `\\` and `"` escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    """An InfluxQL string literal in single quotes, with `\\` and `'` escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def split_into_requests(lines: bytes, *, lines_per_request: int = LINES_PER_WRITE) -> Iterator[bytes]:
    """Line protocol cut into bodies of whole lines, `lines_per_request` lines each."""
    all_lines = [line for line in lines.split(b"\n") if line.strip()]
    for start in range(0, len(all_lines), lines_per_request):
        yield b"\n".join(all_lines[start : start + lines_per_request]) + b"\n"


class InfluxDB1Server(ServerProcess):
    """One `influxd` process with its own config, ports and data directory.

    `stop()` then `start()` again reuses the same data directory and ports, so a test
    can restart the server in the middle of an import and find its data.
    """

    error = InfluxDBError
    stop_signal = signal.SIGTERM
    stop_timeout = STOP_TIMEOUT_S

    def __init__(self, root: Path | None = None, *, influxd: Path = INFLUXD) -> None:
        super().__init__(root, prefix="influxdb1-")
        self.influxd = influxd
        self.http_port = free_loopback_port()
        self.rpc_port = free_loopback_port()
        self.config_path = self.root / "influxdb.conf"

    # -- lifecycle -------------------------------------------------------------------

    def write_config(self) -> None:
        self.config_path.write_text(
            _CONFIG_TEMPLATE.format(root=self.root, http_port=self.http_port, rpc_port=self.rpc_port)
        )

    def start(self, *, timeout: float = START_TIMEOUT_S) -> None:
        """Start influxd and wait until /ping answers; raise with the log tail if it does not."""
        self._refuse_if_running()
        self.write_config()
        # INFLUXDB_* variables override the config file: keep the caller's out.
        env = {key: value for key, value in os.environ.items() if not key.startswith("INFLUXDB_")}
        began = self._spawn([str(self.influxd), "run", "-config", str(self.config_path)], env=env,
                            ready=self._ping, waiting_for=f"answer {self.url}/ping", timeout=timeout)
        self.last_start_seconds = time.monotonic() - began

    # -- HTTP ------------------------------------------------------------------------

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1.0) as response:
                return response.status == 204
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def _request(self, path: str, params: dict[str, str], body: bytes | None = None) -> tuple[int, bytes]:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, data=body, method="POST")
        if body is not None:
            request.add_header("Content-Type", "text/plain; charset=utf-8")
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def write(self, lines: bytes, db: str, precision: str = "ns") -> int:
        """POST line protocol to /write in requests of whole lines; return the line count.

        Anything but 204 raises InfluxDBError with the server's answer: a partial write
        (400 "partial write: ...") is an error, never a shrug.
        """
        params = {"db": db, "precision": _WRITE_PRECISION[precision]}
        written = 0
        for body in split_into_requests(lines):
            status, answer = self._request("/write", params, body)
            if status != 204:
                raise InfluxDBError(
                    f"/write answered {status} after {written} lines were accepted: "
                    f"{answer.decode('utf-8', 'replace').strip()}"
                )
            written += body.count(b"\n")
        return written

    def query(self, q: str, db: str | None = None, epoch: str = "ns") -> list[dict[str, Any]]:
        """Run InfluxQL through /query; return its `results` list. Any error raises."""
        params = {"q": q, "epoch": epoch}
        if db is not None:
            params["db"] = db
        status, answer = self._request("/query", params, b"")
        text = answer.decode("utf-8", "replace")
        if status != 200:
            raise InfluxDBError(f"/query answered {status} for {q!r}: {text.strip()}")
        document = json.loads(answer)
        if "error" in document:
            raise InfluxDBError(f"/query failed for {q!r}: {document['error']}")
        results = document.get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxDBError(f"/query statement failed for {q!r}: {result['error']}")
        return results

    def create_database(self, name: str) -> None:
        self.query(f"CREATE DATABASE {quote_ident(name)}")

    def drop_database(self, name: str) -> None:
        self.query(f"DROP DATABASE {quote_ident(name)}")

    def points(self, measurement: str, db: str, *, tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Every point of `measurement` (of one series when `tags` are given) as {time, tag..., field...}.

        Time is in epoch ns. GROUP BY * keeps tags apart from fields. InfluxDB 1.x fills
        fields a point does not have with null in SELECT *: those are left out, as they
        are absent. Sorted by (time, tags) so the order does not depend on the series order.
        """
        where = ""
        if tags:
            where = " WHERE " + " AND ".join(f"{quote_ident(k)} = {quote_literal(v)}" for k, v in sorted(tags.items()))
        results = self.query(f"SELECT * FROM {quote_ident(measurement)}{where} GROUP BY *", db=db)
        rows: list[dict[str, Any]] = []
        for result in results:
            for series in result.get("series", []):
                tags = {key: value for key, value in series.get("tags", {}).items() if value != ""}
                columns = series["columns"]
                for values in series["values"]:
                    row = {column: value for column, value in zip(columns, values) if value is not None}
                    row.update(tags)
                    rows.append(row)
        rows.sort(key=lambda row: (row["time"], sorted((k, str(v)) for k, v in row.items())))
        return rows

    def field_types(self, measurement: str, db: str) -> dict[str, str]:
        """{field key: "float" | "integer" | "string" | "boolean"} from SHOW FIELD KEYS."""
        results = self.query(f"SHOW FIELD KEYS FROM {quote_ident(measurement)}", db=db)
        types: dict[str, str] = {}
        for result in results:
            for series in result.get("series", []):
                for key, kind in series["values"]:
                    types[key] = kind
        return types


def require_influxd() -> None:
    """Fail in CI (the server is part of the contract there), skip elsewhere; both say how to fix it."""
    if INFLUXD.exists():
        return
    reason = f"{INFLUXD} not found: run .ci/run or `apt-get install influxdb` (Debian's InfluxDB 1.6.7)"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def influxdb() -> Iterator[InfluxDB1Server]:
    """One InfluxDB 1.x server for the whole session (do not stop it in a test)."""
    require_influxd()
    yield from running(InfluxDB1Server())


@pytest.fixture
def influx_db(influxdb: InfluxDB1Server) -> Iterator[str]:
    """A fresh, uniquely named database on the session server, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    influxdb.create_database(name)
    try:
        yield name
    finally:
        if influxdb.running:
            influxdb.drop_database(name)


@pytest.fixture
def private_influxdb() -> Iterator[InfluxDB1Server]:
    """A server of the test's own, free to be stopped and restarted; closed afterwards."""
    require_influxd()
    yield from running(InfluxDB1Server())


def recheck_short_count(server: InfluxDB1Server, count: Callable[[], int], expected: int) -> str:
    """A short count re-checked after a restart (server_process.recheck_short_count); 1.6.7's
    late counts are influxdata/influxdb#8169."""
    return server_process.recheck_short_count(server, count, expected, name="InfluxDB 1.6.7",
                                              why=" (influxdata/influxdb#8169)")
