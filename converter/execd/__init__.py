"""`csv2lp execd`: a spool folder of CSV files, converted and emitted for Telegraf's inputs.execd.

Telegraf starts this process once and reads line protocol from its stdout; the process
stays alive, remembers what it has sent, and exits 0 when Telegraf closes its stdin.

    spool/*.csv ──> spool.scan ─┬─> Spooler (spooler.py) ──> pipeline: read, encode
      arrivals.py (inotify) ────┘     │                             │ lines in batches
      wakes the loop at once          │ checkpoint after each batch │
                                      v                             v
                                checkpoint.py              gate (choose_gate below):
                                (state file)                 flow.FlowControl   <── telegraf_stats.py:
                                                             │  or FixedPace         each output's buffer_size,
                                                             │  (pacing.py)          limit, written, dropped
                                                             v                       from Telegraf's metrics page
                                protocol.LineWriter ──> stdout pipe ──> Telegraf
                                protocol.Log ─────────> stderr (E!/W!/I!/D!)

- settings.py       the csv2lp.toml file and the command-line overrides, checked once
- spool.py          which files are ready, their identity and content hash, moving them on
- arrivals.py       inotify: a file renamed into the spool is complete at once; else polling
- checkpoint.py     the state file: the file being sent and every file sent, atomically
- telegraf_stats.py Telegraf's own numbers about its output buffers, read from its metrics page
- flow.py           the gate from those numbers: a batch goes only while every watched buffer has room
- pacing.py         the fixed pace used without the numbers (a token bucket sized for an outage)
- protocol.py       Telegraf's side: the private stdout, the log, stop requests, the exit
- spooler.py        the loop that ties them together
"""

from __future__ import annotations

import time

import os
import stat

from ..errors import ConverterError
from .flow import FixedPace, FlowControl, Gate, Unthrottled
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
    spooler = Spooler(settings, writer, choose_gate(settings, writer.fd, stop, log), log, stop)
    status = spooler.run()
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
    fixed = FixedPace(TokenBucket(settings.pace.lines_per_second, stop.event))
    if not settings.flow.url:
        log.info(f"pacing: {settings.pace.describe()} (no [flow] telegraf_metrics_url: the fixed pace of [pacing])")
        return fixed
    log.info(f"flow control: from Telegraf's buffer numbers at {settings.flow.url}, batches of "
             f"{settings.flow.batch_lines:,}; without them, the fixed pace of [pacing]: {settings.pace.describe()}")
    return FlowControl(settings.flow, fixed, replay_lines=settings.replay_lines, stop=stop.event, log=log)
