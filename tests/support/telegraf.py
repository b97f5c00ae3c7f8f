"""A real Telegraf for tests: the binary built by .ci/install-telegraf, one process per config.

Telegraf runs with a config text written into a temp dir; everything it prints (it logs
to stderr by default) goes to a log file that tests read with `wait_for_log` and
`log_text`. Every wait is bounded; a watchdog kills a Telegraf that outlives its
`max_lifetime`, and the fixtures stop every process they started, also when a test fails.

Telegraf's own shutdown takes up to ~10 s when an execd child ignores stdin EOF
(stdin close, SIGTERM 5 s later, SIGKILL 5 s after that), so `stop` waits longer than
that before it kills Telegraf itself.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from support.influxdb import InfluxDB1Server

TELEGRAF_VERSION = "1.39.3"
DEFAULT_BIN_DIR = Path.home() / ".cache" / "csv2lp-bin"
INSTALL_SCRIPT = ".ci/install-telegraf"

START_TIMEOUT_S = 20.0
# Telegraf gives an execd child 5 s after closing its stdin, then 5 s after SIGTERM.
STOP_TIMEOUT_S = 15.0
KILL_TIMEOUT_S = 5.0
MAX_LIFETIME_S = 180.0
LOG_TAIL_CHARS = 4_000
POLL_S = 0.05

# Flush fast and log every write: tests wait for "Wrote batch" lines, not for minutes.
TEST_AGENT = {
    "interval": "1s",
    "round_interval": False,
    "flush_interval": "1s",
    "flush_jitter": "0s",
    "collection_jitter": "0s",
    "metric_batch_size": 1000,
    "metric_buffer_limit": 10000,
    "debug": True,
    "quiet": False,
    "omit_hostname": True,
}


# What Telegraf v1.39.3 logs when an output's memory buffer drops its oldest metrics
# (models/running_output.go). It is printed only at the next write attempt, and
# metrics still in the buffer when Telegraf stops with its output down are lost
# without it: its absence alone proves nothing, count the points too.
BUFFER_OVERFLOW_PATTERN = r"W! \[outputs\.[^\]]+\] Metric buffer overflow; (\d+) metrics have been dropped"
# Debug lines (agent debug = true) after every successful write, and the buffer level then.
WROTE_BATCH_PATTERN = r"D! \[outputs\.[^\]]+\] Wrote batch of (\d+) metrics in"
BUFFER_FULLNESS_PATTERN = r"D! \[outputs\.[^\]]+\] Buffer fullness: (\d+) / (\d+) metrics"


def metrics_written(log: str) -> int:
    """Metrics Telegraf wrote successfully, from its debug log: re-sent metrics count each time."""
    return sum(int(n) for n in re.findall(WROTE_BATCH_PATTERN, log))


def peak_buffer_fullness(log: str) -> int:
    """The fullest the output buffer was at any write attempt (debug log), 0 when never logged."""
    return max((int(n) for n, _ in re.findall(BUFFER_FULLNESS_PATTERN, log)), default=0)


class TelegrafError(AssertionError):
    """Telegraf did not do what the test waited for; the message carries its log tail."""


def find_telegraf_binary() -> Path | None:
    """The cached binary: $CSV2LP_BIN_DIR/telegraf, else ~/.cache/csv2lp-bin/telegraf."""
    bin_dir = Path(os.environ.get("CSV2LP_BIN_DIR") or DEFAULT_BIN_DIR)
    binary = bin_dir / "telegraf"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


def toml_value(value: object) -> str:
    """A Python scalar or list as a TOML value (enough for Telegraf settings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def toml_table(header: str, settings: Mapping[str, object]) -> str:
    """`[header]` or `[[header]]` (as given) followed by two-space-indented settings."""
    body = "".join(f"  {key} = {toml_value(value)}\n" for key, value in settings.items())
    return f"{header}\n{body}"


def agent_section(**overrides: object) -> str:
    """The [agent] table with test defaults (fast flushes, debug log), `overrides` on top."""
    return toml_table("[agent]", {**TEST_AGENT, **overrides})


def influxdb_output_section(url: str, database: str, **overrides: object) -> str:
    """An [[outputs.influxdb]] table writing to `database` on a v1 server at `url`."""
    settings: dict[str, object] = {
        "urls": [url],
        "database": database,
        # The test creates its database itself; Telegraf must not need admin rights.
        "skip_database_creation": True,
        "timeout": "5s",
    }
    settings.update(overrides)
    return toml_table("[[outputs.influxdb]]", settings)


class TelegrafProcess:
    """One Telegraf process: config in `workdir`, stdout+stderr appended to `log_path`.

    `stop()` then `start()` (or `restart()`) runs the same config again and appends to
    the same log, with a marker line between runs, so a test can read the whole story.
    """

    def __init__(
        self,
        binary: Path,
        config_text: str,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        max_lifetime: float = MAX_LIFETIME_S,
    ) -> None:
        self.binary = binary
        self.config_text = config_text
        self.workdir = Path(workdir)
        self.env = dict(env or {})
        self.max_lifetime = max_lifetime
        self.config_path = self.workdir / "telegraf.conf"
        self.log_path = self.workdir / "telegraf.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.last_stop_seconds: float | None = None
        # Wall-clock time of the last SIGTERM, to compare with times a child process logs.
        self.last_sigterm_at: float | None = None
        self.last_returncode: int | None = None
        self._watchdog: threading.Timer | None = None
        self._pgids: list[int] = []

    # -- lifecycle -------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> TelegrafProcess:
        if self.running:
            raise TelegrafError(f"Telegraf is already running (pid {self.pid})")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text)
        env = {**os.environ, **self.env}
        with open(self.log_path, "ab") as log:
            self.starts += 1
            log.write(f"=== csv2lp test: start #{self.starts} at {time.time():.3f} ===\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [str(self.binary), "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
                # Its own process group: a Ctrl-C in pytest must not reach Telegraf or
                # its execd children first, and close() can find those children by pgid.
                start_new_session=True,
            )
        self._pgids.append(self.process.pid)  # start_new_session: pgid == pid
        self._watchdog = threading.Timer(self.max_lifetime, self._kill_overdue, args=(self.process,))
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def _kill_overdue(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            with open(self.log_path, "ab") as log:
                log.write(f"=== csv2lp test: watchdog kill after {self.max_lifetime:.0f} s ===\n".encode())
            process.kill()

    def stop(self, *, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM (Telegraf's graceful shutdown), SIGKILL after `timeout`; return the exit status.

        `last_stop_seconds` records how long the graceful part took.
        """
        process, self.process = self.process, None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if process is None:
            return self.last_returncode
        began = time.monotonic()
        if process.poll() is None:
            self.last_sigterm_at = time.time()
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=KILL_TIMEOUT_S)
        self.last_stop_seconds = time.monotonic() - began
        self.last_returncode = process.returncode
        return process.returncode

    def kill(self) -> int | None:
        """SIGKILL Telegraf alone, at once: a crash, as far as its execd children can tell.

        Its children stay alive (they see stdin EOF); `group_pids()` shows them.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=KILL_TIMEOUT_S)
        return self.stop()

    def restart(self) -> TelegrafProcess:
        self.stop()
        return self.start()

    def group_pids(self) -> list[int]:
        """Live processes in the process groups this object started (Telegraf and its children)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Fields after the ")" that closes the command name: state ppid pgrp ...
            state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
            if int(pgrp) in self._pgids and state != "Z":
                pids.append(int(entry.name))
        return sorted(pids)

    def close(self) -> None:
        """Stop Telegraf, then SIGKILL whatever is left in its process groups (orphaned children)."""
        self.stop()
        for pgid in self._pgids:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def __enter__(self) -> TelegrafProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- log -------------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, size: int = LOG_TAIL_CHARS) -> str:
        text = self.log_text()
        return f"--- last {min(size, len(text))} chars of {self.log_path} ---\n{text[-size:]}"

    def wait_for_log(self, pattern: str, timeout: float = START_TIMEOUT_S, *, since: int = 0) -> re.Match[str]:
        """Wait until `pattern` (a regex) appears in the log at or after offset `since`.

        Raise TelegrafError with the log tail on timeout, or at once when Telegraf has
        exited without printing it.
        """
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            match = regex.search(text, since)
            if match:
                return match
            if self.process is None or self.process.poll() is not None:
                # Read once more: the line may have landed between the search and the exit.
                match = regex.search(self.log_text(), since)
                if match:
                    return match
                status = self.process.returncode if self.process is not None else self.last_returncode
                raise TelegrafError(
                    f"Telegraf is not running (exit status {status}) and never logged {pattern!r}\n"
                    f"{self.log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise TelegrafError(f"Telegraf did not log {pattern!r} within {timeout:.0f} s\n{self.log_tail()}")
            time.sleep(POLL_S)

    def log_size(self) -> int:
        """The current log length, to pass as `since` to wait only for what comes next."""
        return len(self.log_text())


def wait_until(condition: Callable[[], object], timeout: float, what: str, *, poll: float = 0.1) -> object:
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TelegrafError(f"timed out after {timeout:.0f} s waiting for {what} (last value {result!r})")
        time.sleep(poll)


def internal_write(metrics_url: str) -> dict[str, dict[str, float]]:
    """{output: {buffer_size, metrics_written, metrics_dropped, ...}} from Telegraf's prometheus_client
    page, read here independently of csv2lp's own parser (converter/execd/telegraf_stats.py)."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    numbers: dict[str, dict[str, float]] = {}
    for name, labels, value in re.findall(r"^internal_write_(\w+)\{([^}]*)\} (\S+)", text, re.MULTILINE):
        output = re.search(r'output="([^"]*)"', labels).group(1)
        numbers.setdefault(output, {})[name] = float(value)
    return numbers


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def telegraf_bin() -> Path:
    """The real Telegraf binary; fail in CI (it is part of the contract there), skip elsewhere."""
    binary = find_telegraf_binary()
    if binary is not None:
        return binary
    where = os.environ.get("CSV2LP_BIN_DIR") or str(DEFAULT_BIN_DIR)
    reason = f"no Telegraf binary in {where}: run {INSTALL_SCRIPT} (builds Telegraf v{TELEGRAF_VERSION} with go install)"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


StartTelegraf = Callable[..., TelegrafProcess]


@pytest.fixture
def start_telegraf(telegraf_bin: Path, tmp_path: Path) -> Iterator[StartTelegraf]:
    """Factory: `start_telegraf(config_text, env=None, name="telegraf")` -> a running TelegrafProcess.

    Each call gets its own folder under tmp_path; every process is stopped at teardown.
    """
    started: list[TelegrafProcess] = []

    def start(
        config_text: str,
        *,
        env: Mapping[str, str] | None = None,
        name: str = "telegraf",
        max_lifetime: float = MAX_LIFETIME_S,
    ) -> TelegrafProcess:
        workdir = tmp_path / f"{name}-{len(started)}"
        process = TelegrafProcess(
            telegraf_bin, textwrap.dedent(config_text), workdir, env=env, max_lifetime=max_lifetime
        )
        started.append(process)
        return process.start()

    try:
        yield start
    finally:
        for process in started:
            process.close()


@pytest.fixture
def telegraf_to_influxdb(
    start_telegraf: StartTelegraf, influxdb: InfluxDB1Server, influx_db: str
) -> StartTelegraf:
    """Factory: Telegraf whose only output is [[outputs.influxdb]] into the fresh `influx_db`.

    `telegraf_to_influxdb(inputs_text, agent=None, output=None, env=None, max_lifetime=...)`: `inputs_text`
    holds the input (and processor) tables; `agent` overrides TEST_AGENT settings;
    `output` overrides [[outputs.influxdb]] settings. Query back with
    `influxdb.points(measurement, influx_db)`.
    """

    def start(
        inputs_text: str,
        *,
        agent: Mapping[str, object] | None = None,
        output: Mapping[str, object] | None = None,
        env: Mapping[str, str] | None = None,
        name: str = "telegraf",
        max_lifetime: float = MAX_LIFETIME_S,
    ) -> TelegrafProcess:
        config = "\n".join(
            [
                agent_section(**(agent or {})),
                influxdb_output_section(influxdb.url, influx_db, **(output or {})),
                textwrap.dedent(inputs_text),
            ]
        )
        return start_telegraf(config, env=env, name=name, max_lifetime=max_lifetime)

    return start
