"""What `csv2lp --influx-url` will do with a file, computed from its lines as the sink routes them
(converter/sinks/influxdb/chunks.py): how many lines travel on each connection, how many
requests that makes, and the one-line error of a refused first request.

The tests compare csv2lp's own report with these, so a change of routing or batching shows.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from converter.sinks.influxdb import time_routes
from support.data import REPO

CLI_TIMEOUT_S = 240.0
BATCH_LINES = 5_000  # csv2lp's default --batch-lines
CONNECTIONS = 2  # and --connections


def converted_lines(source: Path, *, precision: str = "ns", preset: str = "movebank") -> pa.Array:
    done = subprocess.run([sys.executable, "-m", "converter", "convert", str(source), "--preset", preset,
                           "--precision", precision, "-q"], cwd=REPO, capture_output=True, timeout=CLI_TIMEOUT_S)
    assert done.returncode == 0, done.stderr.decode()
    return pa.array(done.stdout.decode().splitlines(keepends=True), pa.string())


def lines_per_connection(source: Path, *, connections: int = CONNECTIONS, precision: str = "ns") -> list[int]:
    """How many of csv2lp's lines for `source` travel on each connection (routed by their time)."""
    routes = time_routes(converted_lines(source, precision=precision), connections)
    return np.bincount(routes, minlength=connections).tolist()


def expected_requests(source: Path, *, batch_lines: int = BATCH_LINES, connections: int = CONNECTIONS,
                      precision: str = "ns") -> int:
    """Requests csv2lp makes for `source`: each connection's lines in chunks of `batch_lines`."""
    per_connection = lines_per_connection(source, connections=connections, precision=precision)
    return sum(math.ceil(n / batch_lines) for n in per_connection)


def first_request_refused(where: str, said: str, advice: str, per_connection: list[int]) -> list[str]:
    """The error line of a run whose first request was refused (two connections, one request each):
    either connection's request may be the first, the other is then never sent."""
    total = sum(per_connection)
    first, second = per_connection
    return [f"csv2lp: error: {where} refused a write request: {said}.{advice} Stopped at the first failed request: "
            f"0 lines confirmed, {total:,} NOT confirmed ({a:,} in the refused request, {b:,} not sent after the "
            "stop)." for a, b in ((first, second), (second, first))]
