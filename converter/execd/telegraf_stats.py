"""Telegraf's own numbers about its output buffers, read from its `outputs.prometheus_client`.

The route, all inside the agent that runs csv2lp (telegraf/telegraf.conf):

    [[inputs.internal]] every 250 ms ──> internal_write{output=...}
        ──> [[outputs.prometheus_client]] on 127.0.0.1 (export_timestamp = true)
        ──> GET /metrics by csv2lp, only while it has lines to send

`inputs.internal` reports per output (tag `output`, and `alias` when set) `buffer_size`
(metrics queued plus the batch being written: `length()` in models/buffer_mem.go of
telegraf v1.39.3), `buffer_limit`, `metrics_written` and `metrics_dropped`. Each value is
stamped with the time the agent took just BEFORE it read the counters (selfstat.Metrics
in v1.39.3), rounded to the millisecond for a sub-second interval (agent.getPrecision):
the stamp is never later than the reading by more than half a millisecond, which is what
lets flow.py bound the buffer by what was emitted after it.

Telegraf is the server here, so nothing is logged anywhere when csv2lp is not running
(with a socket_writer pushing to csv2lp, every write to a closed port would be an error
line in Telegraf's log).
"""

from __future__ import annotations

import http.client
import re
import time
import urllib.parse
from dataclasses import dataclass

# v1 collector names: measurement + "_" + field (plugins/outputs/prometheus_client/v1).
_SAMPLE = re.compile(
    r"^internal_write_(buffer_size|buffer_limit|metrics_written|metrics_dropped)"
    r"\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)(?:\s+(?P<ms>-?\d+))?\s*$",
    re.MULTILINE,
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class StatsUnavailable(Exception):
    """The endpoint cannot be reached, or answers without any output's buffer numbers."""


@dataclass(frozen=True)
class OutputBuffer:
    """One output's buffer as Telegraf reported it at `at` (Unix seconds, its own stamp)."""

    output: str  # the alias when the output has one, else the plugin name (influxdb_v2)
    plugin: str  # the plugin name: prometheus_client is the route itself, never watched by default
    buffer_size: int
    buffer_limit: int
    metrics_written: int
    metrics_dropped: int
    at: float


def parse(text: str, *, fetched_at: float) -> dict[str, OutputBuffer]:
    """Every output's numbers in one /metrics page, stamped no later than `fetched_at`.

    Samples without a stamp are left out: only the agent's stamp bounds when a value was
    read (export_timestamp = true in the prometheus_client output)."""
    fields: dict[str, dict[str, float]] = {}
    stamps: dict[str, float] = {}
    plugins: dict[str, str] = {}
    for match in _SAMPLE.finditer(text):
        labels = dict(_LABEL.findall(match["labels"]))
        name = labels.get("alias") or labels.get("output")
        if not name:
            continue
        plugins[name] = labels.get("output", name)
        try:
            value = float(match["value"])
        except ValueError:
            continue
        if not match["ms"]:
            continue
        fields.setdefault(name, {})[match[1]] = value
        at = min(int(match["ms"]) / 1000, fetched_at)  # a clock ahead of ours must not make a reading look newer
        stamps[name] = min(stamps.get(name, at), at)  # the oldest field of the output decides
    buffers = {}
    for name, values in fields.items():
        if "buffer_size" not in values or "buffer_limit" not in values:
            continue
        buffers[name] = OutputBuffer(name, plugins[name], int(values["buffer_size"]), int(values["buffer_limit"]),
                                     int(values.get("metrics_written", 0)), int(values.get("metrics_dropped", 0)),
                                     stamps[name])
    return buffers


class StatsClient:
    """GETs the /metrics page on loopback over one kept-alive connection."""

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"{url!r}: give an http://HOST:PORT/PATH address")
        self.url = url
        self._host, self._port = parts.hostname, parts.port or 80
        self._path = (parts.path or "/metrics") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def fetch(self) -> dict[str, OutputBuffer]:
        for attempt in (1, 2):  # a kept-alive connection the server closed fails once, harmlessly
            try:
                if self._connection is None:
                    self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
                self._connection.request("GET", self._path)
                response = self._connection.getresponse()
                body = response.read()
                fetched_at = time.time()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 2:
                    raise StatsUnavailable(f"{self.url}: {exc}") from None
                continue
            if response.status != 200:
                raise StatsUnavailable(f"{self.url} answered HTTP {response.status} {response.reason}")
            buffers = parse(body.decode("utf-8", errors="replace"), fetched_at=fetched_at)
            if not buffers:
                raise StatsUnavailable(f"{self.url} has no stamped internal_write numbers: route [[inputs.internal]] "
                                       f"to this [[outputs.prometheus_client]] (namepass = [\"internal_write\"]) with "
                                       f"export_timestamp = true")
            return buffers
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
