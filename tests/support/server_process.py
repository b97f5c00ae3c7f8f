"""What the real test servers share (influxdb.py: InfluxDB 1.6.7, influxdb2.py: 2.x, kafka.py: Kafka).

One child process in a session of its own (a Ctrl-C in pytest must not reach it first),
its output appended to `log_path` in a data folder the object may own, a bounded start
that fails with the log's tail, and a bounded stop: `stop_signal`, then SIGKILL.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

LOG_TAIL_BYTES = 4_000

Server = TypeVar("Server", bound="ServerProcess")


class ServerProcess:
    """Subclasses set `error`, `stop_signal`, `stop_timeout` and `http_port` (or `address`), and start with `_spawn`.

    `program` names the server in messages and its log file (`<program>.log` in `root`).
    """

    program: str = "influxd"
    error: type[Exception] = RuntimeError
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 10.0
    http_port: int

    def __init__(self, root: Path | None, *, prefix: str) -> None:
        self._owns_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix=prefix)) if root is None else Path(root)
        self.log_path = self.root / f"{self.program}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.last_start_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def address(self) -> str:
        """Where clients reach the server, for messages."""
        return self.url

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _refuse_if_running(self) -> None:
        if self.running:
            raise self.error(f"{self.program} is already running at {self.address}")

    def _spawn(self, argv: list[str], *, env: Mapping[str, str], ready: Callable[[], bool], waiting_for: str,
               timeout: float, cwd: Path | None = None) -> float:
        """Start `argv` and poll `ready` until it is true; the monotonic time it began, for the caller's books.

        Raises `error` with the log's tail if the process exits first or `ready` stays
        false for `timeout` seconds (`waiting_for` says what was awaited).
        """
        self._refuse_if_running()  # the subclass may check first, before it writes its config
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            env=dict(env), cwd=cwd, start_new_session=True)
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise self.error(f"{self.program} exited with status {code} while starting\n{self.log_tail()}")
            if ready():
                return began
            time.sleep(0.05)
        self.stop()
        raise self.error(f"{self.program} did not {waiting_for} within {timeout:.0f} s\n{self.log_tail()}")

    def stop(self, *, timeout: float | None = None) -> None:
        """`stop_signal`, then SIGKILL if the server is still alive after `timeout` (default `stop_timeout`) seconds."""
        timeout = self.stop_timeout if timeout is None else timeout
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(self.stop_signal)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def close(self) -> None:
        """Stop the server and delete the data directory this object created."""
        self.stop()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def start(self) -> None:
        raise NotImplementedError

    def __enter__(self: Server) -> Server:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def log_tail(self, size: int = LOG_TAIL_BYTES) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return f"(no log at {self.log_path})"
        return f"--- last {min(size, len(data))} bytes of {self.log_path} ---\n" + data[-size:].decode(
            "utf-8", "replace"
        )


def running(server: Server) -> Iterator[Server]:
    """For a fixture: `yield from running(server)` starts it, hands it over, and closes it afterwards."""
    try:
        server.start()
        yield server
    finally:
        server.close()


# After the restart of a recheck: how long the count may take to be complete (a 2.x engine
# reopening a large cache can take tens of seconds on a loaded 2-core machine).
RECOUNT_TIMEOUT_S = 60.0


def recheck_short_count(server: ServerProcess, count: Callable[[], int], expected: int, *, name: str,
                        why: str = "", recount_timeout: float | None = None) -> str:
    """A count that stayed short: restart the server, count again, and say which it was.

    Both InfluxDB 1.6.7 and 2.8.0 can count points short for a while after they acknowledged
    their writes (REFERENCE.md); a restart makes them count everything. Returns "" when the
    count is complete, the note for a short count the restart made complete (counted for up
    to `recount_timeout`), and raises AssertionError naming the loss when points are missing
    after the restart too. `why` is appended to the note (e.g. the upstream issue).
    """
    before = count()
    if before >= expected:
        return ""
    server.stop()
    server.start()
    deadline = time.monotonic() + (RECOUNT_TIMEOUT_S if recount_timeout is None else recount_timeout)
    while (after := count()) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
    if after < expected:
        raise AssertionError(f"{expected - after:,} of {expected:,} points missing, also after restarting "
                             f"{server.program} (counted {before:,} before the restart): a loss")
    return f"{name} counted {before:,} of {expected:,} points until a restart, then {after:,}: a short count{why}, not a loss"
