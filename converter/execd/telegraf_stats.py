"""Telegraf's own numbers about its output buffers, and csv2lp's delivery marks, read from its
`outputs.prometheus_client`.

The route, all inside the agent that runs csv2lp (telegraf/telegraf.conf):

    [[inputs.internal]] every 250 ms, per_instance ──> internal_write{output=..., _id=...}
    csv2lp's marks on stdout ─────────────────────────> csv2lp_delivery{writer=...}
        ──> [[outputs.prometheus_client]] on 127.0.0.1 (export_timestamp = true)
        ──> GET /metrics by csv2lp (a thread of its own, poller.py), while it has lines in play

`inputs.internal` reports per output (tag `output`, `alias` when set, and `_id` with
per_instance = true) `buffer_size` (metrics queued plus the batch being written:
`length()` in models/buffer_mem.go of telegraf v1.39.3), `buffer_limit`, and the counters
`metrics_added`, `metrics_written`, `metrics_rejected`, `metrics_dropped`, `write_errors`,
which start at 0 when Telegraf starts. Each value is stamped with the time the agent took
just BEFORE it read the counters (selfstat.Metrics in v1.39.3), rounded to the millisecond
for a sub-second interval (agent.getPrecision): the stamp is never later than the reading
by more than half a millisecond, which is what lets flow.py bound the buffer by what was
emitted after it.

A mark is one line csv2lp writes after each batch, `csv2lp_delivery,csv2lp=flow,writer=W
lines=N`: N lines of writer W are before it in the pipe. The tag sends it to
prometheus_client only (its tagpass; every other output's tagdrop), which serves the last
one as `csv2lp_delivery_lines{writer="W"} N`. delivery.py says what a mark proves.

The page is Telegraf's, but csv2lp trusts none of it: a value that is not a plain count
(NaN, Inf, negative, fractional, text, a limit beyond MAX_BUFFER_LIMIT), a missing field, or
two outputs that share a name make that output's numbers unusable, said in `Page.problems`;
a page that cannot be had at all (refused, an HTTP error, slower than the timeout, larger
than MAX_PAGE_BYTES) is StatsUnavailable. Either way the caller falls back to what is safe
(flow.py); nothing here raises anything else.

Telegraf is the server here, so nothing is logged anywhere when csv2lp is not running
(with a socket_writer pushing to csv2lp, every write to a closed port would be an error
line in Telegraf's log).
"""

from __future__ import annotations

import http.client
import math
import re
import time
import urllib.parse
from dataclasses import dataclass, field

MARK_MEASUREMENT = "csv2lp_delivery"
FLOW_TAG = ("csv2lp", "flow")  # what prometheus_client's tagpass takes and every other output's tagdrop drops
MAX_COUNT = 2**53  # counters beyond this are not exact in the page's floats
MAX_BUFFER_LIMIT = 100_000_000  # 100 million metrics, ~200 GB of buffer: anything above is not a real limit
MAX_PAGE_BYTES = 8 << 20
STALE_S = 5.0  # numbers older than this are not used: [[inputs.internal]] has stopped reporting
ROUTE_PLUGIN = "prometheus_client"  # the route itself: never watched unless named
REQUIRED = ("buffer_size", "buffer_limit", "metrics_written", "metrics_dropped")
OPTIONAL = ("metrics_added", "metrics_rejected", "write_errors")

_SAMPLE = re.compile(
    r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)(?:\s+(?P<ms>\S+))?\s*$",
    re.MULTILINE,
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_WRITE_PREFIX = "internal_write_"
_MARK_NAME = f"{MARK_MEASUREMENT}_lines"


class StatsUnavailable(Exception):
    """The endpoint cannot be reached, or answers without any output's buffer numbers."""


class FlowRefused(Exception):
    """Telegraf's numbers cannot be told apart (two outputs of one name): the config must change."""


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
    metrics_added: int | None = None  # None: an older Telegraf without it
    metrics_rejected: int = 0
    write_errors: int | None = None

    @property
    def added(self) -> int:
        """Metrics ever added to the buffer: the counter, or what left plus what is in it."""
        if self.metrics_added is not None:
            return self.metrics_added
        return self.metrics_written + self.metrics_rejected + self.metrics_dropped + self.buffer_size

    @property
    def left(self) -> int:
        """Metrics that left the buffer written or refused by the output (not dropped)."""
        return self.metrics_written + self.metrics_rejected


@dataclass(frozen=True)
class Page:
    """One /metrics page: every output whose numbers are usable, and why the others are not."""

    outputs: dict[str, OutputBuffer]
    fetched_at: float  # our clock, once the whole page was read: every mark on it was there by then
    problems: dict[str, str] = field(default_factory=dict)  # output -> why its numbers cannot be used
    duplicates: tuple[str, ...] = ()  # output names that two outputs answer to (no alias)
    marks: dict[str, int] = field(default_factory=dict)  # writer -> lines before its last mark
    per_instance: bool = True  # the page tells outputs apart (_id labels): [[inputs.internal]] per_instance


class _Bad(ValueError):
    pass


def _count(name: str, text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise _Bad(f"{name} = {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or value != math.floor(value) or value > MAX_COUNT:
        raise _Bad(f"{name} = {text} is not a count")
    return int(value)


def parse(text: str, *, fetched_at: float) -> Page:
    """Every output's numbers in one /metrics page, stamped no later than `fetched_at`.

    Samples without a stamp are left out: only the agent's stamp bounds when a value was
    read (export_timestamp = true in the prometheus_client output)."""
    instances: dict[tuple[str, str], dict[str, object]] = {}
    plugins: dict[str, str] = {}
    marks: dict[str, int] = {}
    per_instance = False
    for match in _SAMPLE.finditer(text):
        metric = match["name"]
        labels = dict(_LABEL.findall(match["labels"]))
        if metric == _MARK_NAME:
            try:
                if labels.get("writer"):
                    marks[labels["writer"]] = _count("lines", match["value"])
            except _Bad:
                pass  # not ours to trust: the mark counts as not seen
            continue
        if not metric.startswith(_WRITE_PREFIX):
            continue
        key = metric[len(_WRITE_PREFIX):]
        if key not in REQUIRED and key not in OPTIONAL:
            continue
        name = labels.get("alias") or labels.get("output")
        if not name:
            continue
        per_instance = per_instance or "_id" in labels
        plugins[name] = labels.get("output", name)
        values = instances.setdefault((name, labels.get("_id", "")), {})
        try:
            values[key] = _count(key, match["value"])
        except _Bad as exc:
            values.setdefault("_bad", str(exc))
        try:
            ms = float(match["ms"]) if match["ms"] else None
        except ValueError:
            ms = None
        if ms is None or not math.isfinite(ms):
            values.setdefault("_bad", f"{key} has no timestamp (export_timestamp = true)")
            continue
        at = min(ms / 1000, fetched_at)  # a clock ahead of ours must not make a reading look newer
        values["_at"] = min(float(values.get("_at", at)), at)  # type: ignore[arg-type]  # the oldest field decides

    outputs: dict[str, OutputBuffer] = {}
    problems: dict[str, str] = {}
    seen: dict[str, int] = {}
    for (name, _instance), values in instances.items():
        seen[name] = seen.get(name, 0) + 1
        missing = [key for key in REQUIRED if key not in values]
        if "_bad" in values:
            problems[name] = str(values["_bad"])
        elif missing:
            problems[name] = f"no {', '.join(missing)}"
        elif not 1 <= int(values["buffer_limit"]) <= MAX_BUFFER_LIMIT:  # type: ignore[call-overload]
            problems[name] = f"buffer_limit = {values['buffer_limit']} is not a buffer Telegraf can have"
        else:
            outputs[name] = OutputBuffer(
                name, plugins[name], int(values["buffer_size"]), int(values["buffer_limit"]),  # type: ignore[call-overload]
                int(values["metrics_written"]), int(values["metrics_dropped"]), float(values["_at"]),  # type: ignore[call-overload, arg-type]
                metrics_added=values.get("metrics_added"), metrics_rejected=int(values.get("metrics_rejected", 0)),  # type: ignore[arg-type, call-overload]
                write_errors=values.get("write_errors"))  # type: ignore[arg-type]
    duplicates = tuple(sorted(name for name, n in seen.items() if n > 1))
    for name in duplicates:
        outputs.pop(name, None)
        problems[name] = f"{seen[name]} outputs are called {name}"
    return Page(outputs, fetched_at, problems, duplicates, marks, per_instance)


def watched_outputs(page: Page, outputs: tuple[str, ...], url: str) -> dict[str, OutputBuffer]:
    """The outputs to watch on this page (`outputs`, or all but the route's own), all usable; else
    StatsUnavailable saying why, or FlowRefused when two outputs answer to one name."""
    candidates = set(page.outputs) | set(page.problems)
    wanted = outputs or tuple(sorted(
        name for name in candidates
        if (page.outputs[name].plugin if name in page.outputs else name) != ROUTE_PLUGIN))
    twice = [name for name in wanted if name in page.duplicates]
    if twice:
        raise FlowRefused(f"Telegraf has {page.problems[twice[0]].split(' outputs')[0]} outputs called {twice[0]} "
                        f"and reports their buffers under one name: csv2lp cannot keep each of them under its "
                        f"limit; give each an alias (alias = \"{twice[0]}_a\", ...) in telegraf.conf, and name "
                        f"the ones to watch in csv2lp.toml's [flow] outputs if not all")
    missing = [name for name in wanted if name not in candidates]
    if missing:
        raise StatsUnavailable(f"{url} has no numbers for output(s) {', '.join(missing)}; "
                               f"it reports {', '.join(sorted(candidates)) or 'none'} ([flow] outputs)")
    if not wanted:
        raise StatsUnavailable(f"{url} reports no output but {ROUTE_PLUGIN}")
    bad = [name for name in wanted if name in page.problems]
    if bad:
        raise StatsUnavailable(f"the numbers of output {bad[0]} on {url} cannot be used: "
                               f"{page.problems[bad[0]]}")
    newest = max(page.outputs[name].at for name in wanted)
    if page.fetched_at - newest > STALE_S:
        raise StatsUnavailable(f"Telegraf's newest numbers on {url} are "
                               f"{page.fetched_at - newest:.0f} s old (is [[inputs.internal]] still reporting?)")
    return {name: page.outputs[name] for name in wanted}



class StatsClient:
    """GETs the /metrics page on loopback over one kept-alive connection, within `timeout` in all."""

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"{url!r}: give an http://HOST:PORT/PATH address")
        self.url = url
        self._host, self._port = parts.hostname, parts.port or 80
        self._path = (parts.path or "/metrics") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def fetch(self) -> Page:
        reused = self._connection is not None
        try:
            return self._fetch_once()
        except _Stale:
            # A kept-alive connection the server had closed fails once, harmlessly; a slow
            # page is not tried again (it would only double the wait).
            if not reused:
                raise StatsUnavailable(f"{self.url}: the connection was closed") from None
            return self._fetch_once()

    def _fetch_once(self) -> Page:
        deadline = time.monotonic() + self._timeout
        try:
            if self._connection is None:
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            try:
                self._connection.request("GET", self._path)
                response = self._connection.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                raise _Stale() from None
            body = bytearray()
            while chunk := response.read1(65536):
                body.extend(chunk)
                if len(body) > MAX_PAGE_BYTES:
                    raise StatsUnavailable(f"{self.url}: the page is larger than {MAX_PAGE_BYTES >> 20} MiB")
                if time.monotonic() > deadline:
                    raise StatsUnavailable(f"{self.url} took more than {self._timeout:g} s to answer")
            fetched_at = time.time()
        except TimeoutError:
            self.close()
            raise StatsUnavailable(f"{self.url} took more than {self._timeout:g} s to answer") from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise StatsUnavailable(f"{self.url}: {exc}") from None
        except StatsUnavailable:
            self.close()
            raise
        if response.status != 200:
            raise StatsUnavailable(f"{self.url} answered HTTP {response.status} {response.reason}")
        page = parse(body.decode("utf-8", errors="replace"), fetched_at=fetched_at)
        if not page.outputs and not page.problems:
            raise StatsUnavailable(f"{self.url} has no stamped internal_write numbers: route [[inputs.internal]] "
                                   f"to this [[outputs.prometheus_client]] (namepass = [\"internal_write\"]) with "
                                   f"export_timestamp = true")
        return page

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _Stale(Exception):
    """The kept-alive connection was closed by the server before our request."""
