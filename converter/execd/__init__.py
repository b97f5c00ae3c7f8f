"""`csv2lp execd`: a spool folder of CSV files, converted and emitted for Telegraf's inputs.execd.

Telegraf starts this process once and reads line protocol from its stdout; the process
stays alive, remembers what it has sent, and exits 0 when Telegraf closes its stdin.

    spool/*.csv ──> spool.scan ─┬─> Spooler (spooler.py) ──> pipeline: read, encode
      arrivals.py (inotify) ────┘     │                             │ lines in batches, each
      wakes the loop at once          │ checkpoint after each batch │ ended by a delivery mark
                                      v                             v
                                checkpoint.py              gate (choose_gate below):
                                (state file)                 flow.FlowControl (from Telegraf's numbers)
                                                             │  or FixedPace (pacing.py)
                                                             v
                                protocol.LineWriter ──> stdout pipe ──> Telegraf ──> outputs
                                protocol.Log ─────────> stderr (E!/W!/I!/D!)   │
                                                                               │ its numbers, our marks
         done/ <── spooler: a file is done once delivery.py has seen every     v
                   line of it written to every watched output    <──  telegraf_stats.py ──> flow.py

- settings.py       the csv2lp.toml file and the command-line overrides, checked once
- spool.py          which files are ready, their identity and content hash, moving them on
- arrivals.py       inotify: a file renamed into the spool is complete at once; else polling
- checkpoint.py     the state file: the file being sent, the files awaiting confirmation, every
                    file done, atomically
- telegraf_stats.py Telegraf's /metrics page, checked value by value; poller.py fetches it
- flow.py           the gate: a batch goes only while every watched buffer has room in the window
- gates.py, stall.py the gate's parts: the room left, and how long a stall has lasted
- delivery.py       which batches Telegraf has written to every output (its FIFO counters)
- coordination.py   several csv2lp under one Telegraf: the window shared through a folder
- pacing.py         the fixed pace used without the numbers (a token bucket sized for an outage)
- protocol.py       Telegraf's side: the private stdout (whole lines), the log, stop requests
- spooler.py        the loop that ties them together
"""

from __future__ import annotations

import os
import secrets
import stat
import time
from pathlib import Path

from ..errors import ConverterError
from .coordination import Coordination
from .flow import FlowControl
from .gates import FixedPace, Gate, Unthrottled
from .pacing import TokenBucket
from .protocol import LineWriter, Log, StopRequest, claim_stdout, hang_up, install_stop_handlers, wait_until_read
from .settings import ExecdSettings, SettingsOverrides, load_settings
from .spooler import Spooler

__all__ = ["SettingsOverrides", "load_settings", "run"]

DRAIN_TIMEOUT_S = 2.0


def run(config_path: str | None, overrides: SettingsOverrides = SettingsOverrides()) -> int:
    """`csv2lp execd`: the exit status (0 after a stop request, 1 on a config or state-file error)."""
    log = Log()
    try:
        settings = load_settings(config_path, overrides)
    except ConverterError as exc:
        log.error(f"csv2lp execd: {exc}")
        return 1
    writer = LineWriter(claim_stdout())
    stop = StopRequest()
    install_stop_handlers(stop)
    try:
        gate = choose_gate(settings, writer.fd, stop, log)
    except OSError as exc:
        log.error(f"csv2lp execd: cannot use the [flow] coordination_dir {settings.flow.coordination_dir}: "
                  f"{exc.strerror or exc}; give it to the user Telegraf runs as, or set another one.")
        return 1
    spooler = Spooler(settings, writer, gate, log, stop)
    try:
        status = spooler.run()
    finally:
        gate.close()
    unread = writer.drain(DRAIN_TIMEOUT_S)
    after = f" {time.monotonic() - stop.at:.2f} s after {stop.reason}" if stop.at is not None else ""
    left = f"; {unread:,} bytes were still unread in the pipe" if unread else ""
    log.info(f"exiting with status {status}{after}{left}")
    wait_until_read(2, DRAIN_TIMEOUT_S)
    hang_up(writer.fd)
    return status


def choose_gate(settings: ExecdSettings, lines_fd: int, stop: StopRequest, log: Log) -> Gate:
    """Flow control from Telegraf's numbers; the fixed pace without them; nothing for a file or terminal."""
    mode = os.fstat(lines_fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        log.info("stdout is not a pipe (a file or a terminal, not Telegraf): lines are not throttled")
        return Unthrottled(stop.event)
    if not settings.flow.url:
        log.info(f"pacing: {settings.pace.describe()} (no [flow] telegraf_metrics_url: the fixed pace of [pacing])")
        return FixedPace(TokenBucket(settings.pace.lines_per_second, stop.event))
    writer = f"p{os.getpid()}-{secrets.token_hex(4)}"  # this process's marks and coordination file
    coordination = None
    if settings.flow.coordination_dir:
        coordination = Coordination(Path(settings.flow.coordination_dir), writer)
        coordination.open()
    fixed = FixedPace(TokenBucket(settings.pace.lines_per_second, stop.event), coordination)
    shared = f"; the window shared through {settings.flow.coordination_dir}" if coordination else ""
    log.info(f"flow control: from Telegraf's buffer numbers at {settings.flow.url}, batches of "
             f"{settings.flow.batch_lines:,}; without them, the fixed pace of [pacing]: {settings.pace.describe()}"
             f"{shared}")
    return FlowControl(settings.flow, fixed, replay_lines=settings.replay_lines, stop=stop.event, log=log,
                       writer=writer, coordination=coordination)
