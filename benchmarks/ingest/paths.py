"""Each way into InfluxDB, run once into a fresh server, timed until the count is complete.

| key | letter | what runs |
|---|---|---|
| raw-1, raw-2 | a | the ready-made line protocol, gzip'd, POSTed 5,000 lines a request on 1 / 2 connections |
| relay | b | Telegraf `inputs.file` of that line protocol -> the output: Telegraf's relay ceiling |
| telegraf-csv | c | Telegraf `inputs.file` with its own CSV parser -> the output |
| execd | d | `csv2lp execd` under Telegraf, the shipped configs (flow control) |
| execd-unpaced | e | the same, unpaced, with a 2,000,000-metric buffer (unsafe: an outage drops data) |
| execd-paced | f | the same, on the fixed pace of [pacing] alone (no flow control) |
| execd-disk | g | e with Telegraf's disk buffer |
| direct | h | `csv2lp FILE --influx-url ...`: no Telegraf |
| kafka, kafka-2 | i | `csv2lp FILE --kafka-brokers ...` -> Kafka -> 1 / 2 Telegraf kafka_consumer (kafkapaths.py) |
| kafka-backlog | j | every row produced into Kafka while influxd is down, timed from influxd's start |

A path's clock starts when its work starts: the first POST; Telegraf's start for b and c
(it reads the file at once); for d-g, with Telegraf and csv2lp already up and idle, the
rename of the file into the spool, so the pick-up counts; the start of the command for h.
The CPU seconds of a process are what it used from then until the count was complete;
peak RSS is the process's VmHWM (influxd and Telegraf start fresh for every path).
"""

from __future__ import annotations

import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from converter.execd.telegraf_stats import OutputBuffer, StatsClient, StatsUnavailable

from .. import peers
from ..machine import ProcessUsage, process_usage
from . import configs, rawpost
from .configs import ExecdVariant, Folders
from .inputs import Inputs
from .servers import REPO, Target
from .watch import Counted, Progress, Watching, until_counted

from support.influxdb import free_loopback_port  # noqa: E402  (tests/ is on sys.path: servers.py)
from support.telegraf import BUFFER_OVERFLOW_PATTERN, TelegrafProcess, find_telegraf_binary  # noqa: E402

READY_TIMEOUT_S = 60.0
FINAL_NUMBERS_TIMEOUT_S = 3.0  # Telegraf reports every 250 ms (inputs.internal in telegraf.conf)
SETTLE_S = 1.0  # after csv2lp says it watches the spool: let the agent's first numbers come in
DROP_NAME = "movebank.csv"


@dataclass(frozen=True)
class PathSpec:
    key: str
    letter: str
    label: str
    slow: bool = False
    kafka: bool = False  # needs a Kafka broker (the jars of .ci/install-kafka, Java 17+)


PATHS = (
    PathSpec("raw-1", "a", "gzip'd line protocol POSTed, 5,000 lines a request, 1 connection (the database's ceiling)"),
    PathSpec("raw-2", "a", "the same on 2 connections"),
    PathSpec("relay", "b", "Telegraf inputs.file of ready-made line protocol -> output (relay ceiling)"),
    PathSpec("telegraf-csv", "c", "Telegraf's CSV parser (inputs.file, data_format = \"csv\") -> output"),
    PathSpec("execd", "d", "csv2lp execd, shipped telegraf.conf + csv2lp.toml (flow control)"),
    PathSpec("execd-unpaced", "e", "csv2lp execd unpaced, 2,000,000-metric buffer (unsafe)", slow=True),
    PathSpec("execd-paced", "f", "csv2lp execd, fixed pace only (no flow control)", slow=True),
    PathSpec("execd-disk", "g", "csv2lp execd unpaced, buffer_strategy = \"disk\"", slow=True),
    PathSpec("direct", "h", "csv2lp --influx-url (direct write, no Telegraf)"),
    PathSpec("kafka", "i", "csv2lp --kafka-brokers -> Kafka -> 1 Telegraf kafka_consumer -> output", kafka=True),
    PathSpec("kafka-2", "i", "the same, 2 Telegraf consumers in one group", kafka=True),
    PathSpec("kafka-backlog", "j", "backlog: all rows into Kafka with influxd down, timed from its start", kafka=True),
)
SPECS = {spec.key: spec for spec in PATHS}
EXECD_VARIANTS = {
    "execd": ExecdVariant("execd"),
    "execd-unpaced": ExecdVariant("execd-unpaced", flow=False, paced=False, buffer_limit=configs.UNPACED_BUFFER),
    "execd-paced": ExecdVariant("execd-paced", flow=False),
    "execd-disk": ExecdVariant("execd-disk", flow=False, paced=False, buffer_limit=configs.UNPACED_BUFFER,
                               disk_buffer=True),
}


@dataclass
class PathRun:
    """One path, one round: the numbers and how they were checked."""

    path: str
    server: str
    round: int
    rows: int
    seconds: float | None = None
    acked_seconds: float | None = None
    count: int = 0
    check: str = ""
    count_queries: dict = field(default_factory=dict)  # how many count() polls, and their time
    per_series: str = ""  # "exact" or what differs
    processes: dict[str, dict] = field(default_factory=dict)  # role -> {cpu_seconds, peak_rss_mb}
    telegraf: dict | None = None  # metrics_dropped, overflow_logged, peak_buffer_size, buffer_limit, written
    settings: list[str] = field(default_factory=list)  # how the configs differ from the shipped ones
    error: str | None = None

    @property
    def rows_per_second(self) -> float | None:
        return self.rows / self.seconds if self.seconds else None

    def as_dict(self) -> dict:
        return {**asdict(self), "rows_per_second": self.rows_per_second}


def _usage(role_pids: dict[str, int | None]) -> dict[str, ProcessUsage | None]:
    return {role: process_usage(pid) if pid else None for role, pid in role_pids.items()}


def _record(run: PathRun, before: dict[str, ProcessUsage | None], after: dict[str, ProcessUsage | None]) -> None:
    for role, usage in after.items():
        if usage is not None:
            used = usage.since(before.get(role))
            run.processes[role] = {"cpu_seconds": round(used.cpu_seconds, 2),
                                   "peak_rss_mb": round(used.peak_rss_kb / 1024, 1)}


def _finish(run: PathRun, counted: Counted, target: Target, inputs: Inputs, field_key: str,
            rename: Callable[[tuple], tuple] = lambda tags: tags) -> None:
    run.seconds, run.acked_seconds, run.count, run.check = (counted.seconds, counted.acked_seconds, counted.count,
                                                            counted.check)
    run.count_queries = {"queries": counted.queries, "seconds": counted.query_seconds}
    if not counted.complete:
        run.error = counted.check
    try:
        found = {rename(tags): n for tags, n in target.count_per_series(field_key).items()}
    except Exception as exc:  # noqa: BLE001
        run.per_series = f"not counted: {exc}"
        return
    wrong = [(tags, inputs.per_series.get(tags, 0), found.get(tags, 0))
             for tags in sorted(set(found) | set(inputs.per_series)) if found.get(tags, 0) != inputs.per_series.get(tags, 0)]
    run.per_series = "exact" if not wrong else "; ".join(
        f"{dict(tags).get('individual', tags)}: {got:,} of {want:,}" for tags, want, got in wrong[:5])
    if wrong and run.error is None:
        run.error = f"per series: {run.per_series}"


# -- a: raw POST --------------------------------------------------------------------------


def run_raw(run: PathRun, target: Target, inputs: Inputs, *, connections: int, watching: Watching) -> None:
    bodies = inputs.bodies()
    progress = Progress()
    posted: list[rawpost.PostResult] = []

    def post() -> None:
        result = rawpost.post_all(target.url, target.write_path, target.write_params(), target.write_headers(),
                                  bodies, connections=connections, answered=progress.advanced)
        posted.append(result)
        if result.error:
            progress.failed = result.error
        else:
            progress.ack()

    before = _usage({"influxd": target.pid})
    started = time.monotonic()
    thread = threading.Thread(target=post, name="raw-post")
    thread.start()
    after: dict[str, ProcessUsage | None] = {}
    counted = until_counted(target, "event_id", inputs.rows, started, progress, **watching.options(),
                            before_restart=lambda: after.update(_usage({"influxd": target.pid})))
    after = after or _usage({"influxd": target.pid})
    thread.join()
    _record(run, before, after)
    if posted:
        run.processes["client (in the benchmark)"] = {"cpu_seconds": round(posted[0].client_cpu_seconds, 2),
                                                     "peak_rss_mb": None}
    run.settings = [f"{len(bodies):,} requests of {rawpost.LINES_PER_REQUEST:,} lines, gzip level "
                    f"{rawpost.GZIP_LEVEL}, {connections} connection(s)"]
    _finish(run, counted, target, inputs, "event_id")


# -- b-g: Telegraf --------------------------------------------------------------------------


class TelegrafNumbers:
    """Telegraf's own numbers for the data output, read from its prometheus_client like csv2lp does."""

    def __init__(self, port: int, output: str, expected: int, progress: Progress) -> None:
        self.client = StatsClient(f"http://127.0.0.1:{port}/metrics", timeout=1.0)
        self.output, self.expected, self.progress = output, expected, progress
        self.peak_buffer = 0
        self.limit = 0
        self.dropped = 0
        self.written = 0

    def poll(self) -> bool:
        return self._read() is not None

    def settle(self, timeout: float = FINAL_NUMBERS_TIMEOUT_S) -> None:
        """Wait for a report taken after now: the final metrics_written and metrics_dropped."""
        now, deadline = time.time(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            buffer = self._read()
            if buffer is not None and buffer.at > now:
                return
            time.sleep(0.05)

    def _read(self) -> OutputBuffer | None:
        try:
            buffer = self.client.fetch().outputs.get(self.output)
        except StatsUnavailable:
            return None
        if buffer is None:
            return None
        self.peak_buffer = max(self.peak_buffer, buffer.buffer_size)
        self.limit, self.dropped, self.written = buffer.buffer_limit, buffer.metrics_dropped, buffer.metrics_written
        self.progress.advanced(self.written)
        if self.written >= self.expected:
            # The agent's stamp (wall clock, taken before it read the counters) on our clock.
            self.progress.ack(time.monotonic() - max(0.0, time.time() - buffer.at))
        return buffer

    def as_dict(self, log: str) -> dict:
        overflow = sum(int(n) for n in re.findall(BUFFER_OVERFLOW_PATTERN, log))
        return {"metrics_dropped": self.dropped, "overflow_logged": overflow, "peak_buffer_size": self.peak_buffer,
                "buffer_limit": self.limit, "metrics_written": self.written}


def _telegraf(config_text: str, workdir: Path, target: Target, watching: Watching) -> TelegrafProcess:
    binary = find_telegraf_binary()
    if binary is None:
        raise RuntimeError("no Telegraf binary: run .ci/install-telegraf")
    env = {**target.telegraf_env(), "PYTHONPATH": str(REPO)}
    return TelegrafProcess(binary, config_text, workdir, env=env, max_lifetime=watching.timeout + 120)


def _output_name(target: Target) -> str:
    return "influxdb_v2" if target.kind == "v2" else "influxdb"


def _watch_telegraf(run: PathRun, telegraf: TelegrafProcess, target: Target, inputs: Inputs, numbers: TelegrafNumbers,
                    progress: Progress, started: float, before: dict, roles: dict[str, int | None], field_key: str,
                    watching: Watching, rename: Callable[[tuple], tuple] = lambda tags: tags) -> None:
    after: dict[str, ProcessUsage | None] = {}

    def on_poll() -> None:
        numbers.poll()
        if not telegraf.running:
            progress.failed = f"Telegraf exited: {telegraf.log_tail(600)}"

    counted = until_counted(target, field_key, inputs.rows, started, progress, **watching.options(), on_poll=on_poll,
                            before_restart=lambda: after.update(_usage({**roles, "influxd": target.pid})))
    after = after or _usage({**roles, "influxd": target.pid})
    numbers.settle()
    telegraf.stop()
    _record(run, before, after)
    run.telegraf = numbers.as_dict(telegraf.log_text())
    _finish(run, counted, target, inputs, field_key, rename)
    if run.error is None and (run.telegraf["metrics_dropped"] or run.telegraf["overflow_logged"]):
        run.error = f"Telegraf dropped metrics: {run.telegraf}"


def run_telegraf_file(run: PathRun, target: Target, inputs: Inputs, workdir: Path, *, data_format: str,
                      watching: Watching) -> None:
    port = free_loopback_port()
    source = inputs.csv if data_format == "csv" else inputs.lines
    config = configs.file_telegraf_config(source, data_format, target.kind, inputs.rows, port)
    run.settings = config.edits
    telegraf = _telegraf(config.text, workdir / "telegraf", target, watching)
    progress = Progress()
    numbers = TelegrafNumbers(port, _output_name(target), inputs.rows, progress)
    before = _usage({"influxd": target.pid})
    started = time.monotonic()
    try:
        telegraf.start()
        roles = {"telegraf": telegraf.pid}
        # Telegraf's CSV parser keeps the column names as keys (peers.py renames them to compare).
        field_key = "event-id" if data_format == "csv" else "event_id"
        rename = _csv_tags if data_format == "csv" else (lambda tags: tags)
        _watch_telegraf(run, telegraf, target, inputs, numbers, progress, started, before, roles, field_key,
                        watching, rename)
    finally:
        telegraf.close()


def _csv_tags(tags: tuple) -> tuple:
    return tuple(sorted((peers.TAGS.get(k, k), v) for k, v in tags))


def _csv2lp_child(telegraf: TelegrafProcess) -> int | None:
    for pid in telegraf.group_pids():
        if pid == telegraf.pid:
            continue
        try:
            if b"converter" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def run_execd(run: PathRun, target: Target, inputs: Inputs, workdir: Path, *, variant: ExecdVariant,
              watching: Watching) -> None:
    folders = Folders(workdir).make()
    port = free_loopback_port()
    csv2lp_toml = folders.root / "csv2lp.toml"
    csv2lp_config = configs.csv2lp_config(variant, folders, port)
    csv2lp_toml.write_text(csv2lp_config.text)
    config = configs.execd_telegraf_config(variant, target.kind, csv2lp_toml, folders, port)
    run.settings = config.edits + csv2lp_config.edits
    telegraf = _telegraf(config.text, folders.root / "telegraf", target, watching)
    progress = Progress()
    numbers = TelegrafNumbers(port, _output_name(target), inputs.rows, progress)
    hidden = folders.spool / f".{DROP_NAME}.part"  # the documented drop: copy under a hidden name, rename
    shutil.copyfile(inputs.csv, hidden)
    try:
        telegraf.start()
        telegraf.wait_for_log(r"csv2lp execd \S+: watching", timeout=READY_TIMEOUT_S)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not numbers.poll():
            if time.monotonic() > deadline:
                raise RuntimeError(f"no numbers from Telegraf's prometheus_client on port {port}")
            time.sleep(0.1)
        time.sleep(SETTLE_S)
        roles = {"telegraf": telegraf.pid, "csv2lp": _csv2lp_child(telegraf)}
        before = _usage({**roles, "influxd": target.pid})
        started = time.monotonic()
        hidden.rename(folders.spool / DROP_NAME)
        _watch_telegraf(run, telegraf, target, inputs, numbers, progress, started, before, roles, "event_id",
                        watching)
        errors = [line for line in telegraf.log_text().splitlines() if " E! [inputs.execd]" in line]
        if errors and run.error is None:
            run.error = errors[0]
    finally:
        telegraf.close()


# -- h: direct write ----------------------------------------------------------------------


def run_direct(run: PathRun, target: Target, inputs: Inputs, workdir: Path, *, watching: Watching) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    options, env = target.direct_args()
    summary = workdir / "direct.summary.json"
    command = [sys.executable, "-m", "converter", str(inputs.csv), "--preset", "movebank", "--precision", "ns",
               *options, "--quiet", "--summary-json", str(summary), "--rejects", str(workdir / "rejects.csv")]
    run.settings = [" ".join(["csv2lp", "FILE", *command[4:8], *options])]
    progress = Progress()
    launched: list[peers.Launched] = []

    def write() -> None:
        try:
            result = peers.launch(command, workdir, "direct", env=dict(env))
        except Exception as exc:  # noqa: BLE001
            progress.failed = f"cannot start csv2lp: {exc}"
            return
        launched.append(result)
        if result.returncode == 0:
            progress.ack()
        else:
            tail = result.stderr.read_text(errors="replace").strip().splitlines()[-2:]
            progress.failed = f"csv2lp exited {result.returncode}: {' / '.join(tail)}"

    before = _usage({"influxd": target.pid})
    started = time.monotonic()
    thread = threading.Thread(target=write, name="direct")
    thread.start()
    after: dict[str, ProcessUsage | None] = {}
    counted = until_counted(target, "event_id", inputs.rows, started, progress, **watching.options(),
                            before_restart=lambda: after.update(_usage({"influxd": target.pid})))
    after = after or _usage({"influxd": target.pid})
    thread.join(timeout=watching.timeout)
    _record(run, before, after)
    if launched:
        run.processes["csv2lp"] = {"cpu_seconds": round(launched[0].cpu_seconds, 2),
                                   "peak_rss_mb": round(launched[0].max_rss_kb / 1024, 1)}
    _finish(run, counted, target, inputs, "event_id")


def run_path(key: str, run: PathRun, target: Target, inputs: Inputs, workdir: Path, *, watching: Watching) -> None:
    """Run path `key` into `target` (started, empty); fills `run`."""
    if key == "raw-1":
        run_raw(run, target, inputs, connections=1, watching=watching)
    elif key == "raw-2":
        run_raw(run, target, inputs, connections=2, watching=watching)
    elif key == "relay":
        run_telegraf_file(run, target, inputs, workdir, data_format="influx", watching=watching)
    elif key == "telegraf-csv":
        run_telegraf_file(run, target, inputs, workdir, data_format="csv", watching=watching)
    elif key in EXECD_VARIANTS:
        run_execd(run, target, inputs, workdir, variant=EXECD_VARIANTS[key], watching=watching)
    elif key == "direct":
        run_direct(run, target, inputs, workdir, watching=watching)
    elif SPECS.get(key) is not None and SPECS[key].kafka:
        from .kafkapaths import KAFKA_VARIANTS, run_kafka  # it imports this module

        run_kafka(run, target, inputs, workdir, variant=KAFKA_VARIANTS[key], watching=watching)
    else:
        raise ValueError(f"unknown path {key!r}; choose from {', '.join(SPECS)}")
