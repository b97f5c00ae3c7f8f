"""`csv2lp execd`: a spool folder of CSV files, converted and printed at a steady pace for Telegraf.

Telegraf's inputs.execd starts this process once and reads line protocol from its stdout.
The contract (telegraf plugins/inputs/execd, v1.39.3) and how it is kept here:

- stdout carries line protocol only. fd 1 is taken over at start: lines go through a
  private copy of it, and fd 1 and sys.stdout then point at stderr, so a stray print
  (a library, a warning) is logged by Telegraf instead of parsed as a metric.
- Lines are written in whole lines, at most PIPE_BUF bytes per write(): such a write is
  atomic, so a `kill -9` never leaves half a line in the pipe. Telegraf would parse that
  half line as a point (`m v=2i 17000` from `m v=2i 1700000000000000000`).
- Logs go to stderr, one line each, prefixed `E! `/`W! `/`I! `/`D! `, at most 2 KiB:
  Telegraf stops reading stderr for good after a line over 64 KiB.
- It stays alive when the spool is empty: Telegraf restarts a child that exits, even
  with status 0, and a restarted child must not send anything twice.
- stdin EOF (Telegraf stopping) or SIGTERM: the current batch is finished, the checkpoint
  is saved, and the process waits until Telegraf has read every byte of the pipe before
  it exits 0 (Go closes the pipe as soon as the child is gone, losing what was unread).
  Last it closes its ends of the pipes, so that Telegraf's readers end on EOF, not on
  "file already closed".

Progress is checkpointed after every batch (see checkpoint.py). A resumed run reads the
file from its start again (nothing can seek in a .gz) and sends the lines after
`replay_from_line`: the last `replay_lines` or so lines before the checkpoint go out a
second time, covering what sat in the pipe when the process was killed. They are the
same points (same series and timestamp), so InfluxDB stores them once.
"""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import sys
import termios
import threading
import time
from collections import deque
from pathlib import Path
from select import PIPE_BUF
from typing import Iterator

import numpy as np
import pyarrow as pa

from . import __version__, checkpoint, spool
from .arrow_buffers import offsets_of
from .checkpoint import FileProgress, FinishedFile, State
from .encode import EncodeOptions, Encoder
from .errors import ConverterError
from .execd_settings import ExecdSettings, SettingsOverrides, load_settings
from .mapping import Plan
from .pacing import TokenBucket
from .pipeline import EncodedBlock, iter_blocks, parts_and_plans
from .reader import CsvSource, open_source
from .rejects import RejectsWriter
from .sinks.file import lines_buffer
from .summary import RunSummary, shown_reasons

LOG_LINE_LIMIT = 2048
DRAIN_TIMEOUT_S = 2.0
HANG_UP_GRACE_S = 0.05
PROGRESS_EVERY_S = 10.0


# ------------------------------------------------------------------- stderr and stdout


class Log:
    """Telegraf-style log lines on stderr: one write per line, so threads never interleave."""

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd

    def _write(self, level: str, message: str) -> None:
        text = " | ".join(part for part in message.splitlines() if part.strip()) or "-"
        if len(text) > LOG_LINE_LIMIT:
            text = text[: LOG_LINE_LIMIT - 15] + " [truncated]"
        try:
            os.write(self.fd, f"{level}! {text}\n".encode("utf-8", errors="replace"))
        except OSError:
            pass  # Telegraf is gone: nobody is left to tell

    def error(self, message: str) -> None:
        self._write("E", message)

    def warn(self, message: str) -> None:
        self._write("W", message)

    def info(self, message: str) -> None:
        self._write("I", message)

    def debug(self, message: str) -> None:
        self._write("D", message)


def line_aligned_chunks(ends: np.ndarray, limit: int = PIPE_BUF) -> list[tuple[int, int]]:
    """(start, end) byte ranges of whole lines, each at most `limit` bytes (a longer line alone).

    `ends[i]` is where line i ends (exclusive), counted from the first line's start.
    """
    chunks: list[tuple[int, int]] = []
    start, total = 0, int(ends[-1]) if len(ends) else 0
    while start < total:
        fit = int(np.searchsorted(ends, start + limit, side="right"))
        end = int(ends[fit - 1]) if fit else 0
        if end <= start:  # the next line alone is longer than `limit`
            end = int(ends[np.searchsorted(ends, start, side="right")])
        chunks.append((start, end))
        start = end
    return chunks


class LineWriter:
    """The private stdout: whole lines only, in atomic writes (see the module docstring)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.bytes_written = 0

    def write_lines(self, lines: pa.Array) -> None:
        if not len(lines):
            return
        data = memoryview(lines_buffer(lines))
        offsets = offsets_of(lines)
        for start, end in line_aligned_chunks(offsets[1:] - offsets[0]):
            while start < end:  # only a line longer than PIPE_BUF can be written in parts
                start += os.write(self.fd, data[start:end])
        self.bytes_written += len(data)

    def drain(self, timeout: float) -> int:
        """Wait until the reader has taken every byte we wrote; return what is still unread."""
        return wait_until_read(self.fd, timeout)


def wait_until_read(fd: int, timeout: float) -> int:
    """FIONREAD on our end of a pipe tells how much the reader has not read yet (Linux)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            unread = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
        except OSError:
            return 0  # not a pipe (a file, a terminal): nothing to wait for
        if unread == 0 or time.monotonic() >= deadline:
            return unread
        time.sleep(0.005)


def _claim_stdout() -> int:
    """Keep the real stdout for line protocol; send fd 1 and sys.stdout to stderr from now on."""
    sys.stdout.flush()
    lines_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return lines_fd


# ------------------------------------------------------------------------ stop requests


class StopRequest:
    """Set by stdin EOF, SIGTERM or SIGINT; every wait in execd is a wait on `event`."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None
        self.at: float | None = None

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason, self.at = reason, time.monotonic()
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout: float) -> bool:
        return self.event.wait(timeout)


def _watch_stdin(stop: StopRequest) -> None:
    """Read stdin until EOF. Telegraf writes nothing with signal = "none"; newlines are ignored."""
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass  # no stdin at all counts as closed
    stop.set("stdin closed")


def _install_stop_handlers(stop: StopRequest) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: stop.set(signal.Signals(number).name))
    threading.Thread(target=_watch_stdin, args=(stop,), name="csv2lp-stdin", daemon=True).start()


# ------------------------------------------------------------------------------ the loop


class _Fatal(Exception):
    """Nothing can go on (the state file cannot be written): exit 1, Telegraf restarts us."""


class Spooler:
    def __init__(self, settings: ExecdSettings, writer: LineWriter, log: Log, stop: StopRequest) -> None:
        self.settings = settings
        self.spool = settings.spool
        self.writer = writer
        self.log = log
        self.stop = stop
        self.bucket = TokenBucket(settings.pace.lines_per_second, stop.event)
        self.state = State()
        self.unmovable: set[str] = set()  # names we failed to move out of the spool: skip, do not loop

    def run(self) -> int:
        s = self.settings
        self.log.info(f"csv2lp execd {__version__}: watching {self.spool.dir} for {', '.join(self.spool.patterns)} "
                      f"every {self.spool.poll_seconds:g} s; {s.mapping_name}, precision {s.options.precision.value}; "
                      f"state in {self.spool.state_file}")
        self.log.info(f"pacing: {s.pace.describe()}")
        try:
            self._prepare()
            while not self.stop.is_set():
                candidate = self._next_file()
                if candidate is None:
                    self.stop.wait(self.spool.poll_seconds)
                    continue
                self._send(candidate.path)
        except _Fatal as exc:
            self.log.error(str(exc))
            return 1
        except BrokenPipeError:
            self.stop.set("stdout closed")
            self.log.warn("stdout was closed (Telegraf is gone); the last batch is not in the checkpoint and will be sent again")
        return 0

    # -- start-up --------------------------------------------------------------------

    def _prepare(self) -> None:
        try:
            for folder in (self.spool.dir, self.spool.done_dir, self.spool.rejects_dir, self.spool.error_dir,
                           self.spool.state_file.parent):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _Fatal(f"cannot create {exc.filename}: {exc.strerror or exc}; create it and give it to the user "
                         f"Telegraf runs as.") from None
        try:
            self.state = checkpoint.load(self.spool.state_file)
        except checkpoint.CorruptStateError as exc:
            kept = self.spool.state_file.with_name(f"{self.spool.state_file.name}.corrupt-{int(time.time())}")
            os.replace(self.spool.state_file, kept)
            self.log.error(f"{exc} Kept it as {kept} and started with an empty state: a file that was being sent "
                           f"is sent again from its start.")
        except ConverterError as exc:
            raise _Fatal(str(exc)) from None
        self._save()  # fail now, not after the first batch, when the state file cannot be written
        current = self.state.current
        if current is not None:
            self.log.info(f"{current.identity.name}: was being sent, through line {current.emitted_through_line:,}; "
                          f"resuming it first")

    def _save(self) -> None:
        try:
            checkpoint.save(self.spool.state_file, self.state)
        except OSError as exc:
            raise _Fatal(f"cannot write the state file {self.spool.state_file}: {exc.strerror or exc}.") from None

    # -- choosing a file -------------------------------------------------------------

    def _next_file(self) -> spool.Candidate | None:
        try:
            ready = spool.scan(self.spool.dir, self.spool.patterns, settle_seconds=self.spool.poll_seconds)
        except OSError as exc:
            raise _Fatal(f"cannot list the spool folder {self.spool.dir}: {exc.strerror or exc}.") from None
        ready = [c for c in ready if c.path.name not in self.unmovable]
        current = self.state.current
        if current is None:
            return ready[0] if ready else None
        for candidate in ready:
            if candidate.path.name == current.identity.name:
                return candidate
        if (self.spool.dir / current.identity.name).exists():
            return None  # being replaced or touched: it goes first once it has settled
        self.log.warn(f"{current.identity.name}: was being sent (through line {current.emitted_through_line:,}) "
                      f"but is no longer in the spool; forgetting it")
        self.state.current = None
        self._save()
        return ready[0] if ready else None

    # -- one file --------------------------------------------------------------------

    def _send(self, path: Path) -> None:
        try:
            identity = spool.identity(path)
        except OSError as exc:
            self._fail(path, None, f"{path}: cannot read: {exc.strerror or exc}.")
            return
        current = self.state.current
        progress = current if current is not None and current.identity == identity else None
        if current is not None and progress is None:
            self.log.warn(f"{path.name}: changed since it was started (through line "
                          f"{current.emitted_through_line:,}); sending it from the start")
            self.state.current = None
        if progress is None:
            try:
                sha256 = spool.content_sha256(path, self.stop.event)
            except OSError as exc:
                self._fail(path, None, f"{path}: cannot read: {exc.strerror or exc}.")
                return
            if sha256 is None:
                return  # stopping
            before = self.state.sent_before(sha256)
            if before is not None:
                target = self._move(path, self.spool.done_dir)
                self.log.warn(f"{path.name}: the same content was sent on {before.finished_at} (as {before.name}); "
                              f"moved to {target} without sending it again")
                return
            rejects = spool.free_name(self.spool.rejects_dir, f"{path.name}.rejects.csv")
            progress = FileProgress(identity, sha256, checkpoint.now_text(), rejects_path=str(rejects))
            self.state.current = progress
            self.log.info(f"{path.name}: sending ({identity.size:,} bytes)")
        else:
            progress.runs += 1
            self.log.info(f"{path.name}: resuming after line {progress.emitted_through_line:,} (run {progress.runs}); "
                          f"lines after line {progress.replay_from_line:,} are sent again")
        self._save()
        self._convert(path, progress)

    def _convert(self, path: Path, progress: FileProgress) -> None:
        began = time.monotonic()
        summary = RunSummary(files=1)
        rejects = RejectsWriter(progress.rejects_path or spool.free_name(self.spool.rejects_dir, f"{path.name}.rejects.csv"))
        sent_before = progress.lines_emitted
        try:
            source = open_source(str(path), delimiter=self.settings.options.delimiter)
        except ConverterError as exc:
            self._fail(path, progress, str(exc))
            return
        try:
            parts = parts_and_plans(source, str(path), self.settings.mapping, self.settings.options)
            finished = self._emit(path, parts, progress, summary, rejects)
        except (BrokenPipeError, _Fatal):
            raise
        except (ConverterError, OSError) as exc:  # unreadable from here on: a damaged .gz, a vanished disk
            rejects.close()  # the rows rejected before (a damaged file's cut row among them) are in it
            saved = f"; rejected rows saved to {', '.join(rejects.paths)}" if rejects.paths else ""
            self._fail(path, progress, f"{exc} ({self._sent_text(progress, sent_before)}{saved})")
            return
        except Exception as exc:  # a bug of ours: this file goes to error/, the others still go out
            self._fail(path, progress, f"{path}: cannot convert: {type(exc).__name__}: {exc} "
                                       f"({self._sent_text(progress, sent_before)}); please report this")
            return
        finally:
            source.close()
            rejects.close()
        if finished:
            self._finish(path, progress, summary, rejects, time.monotonic() - began)

    @staticmethod
    def _sent_text(progress: FileProgress, sent_before: int) -> str:
        return f"stopped after {progress.lines_emitted:,} lines were sent, {progress.lines_emitted - sent_before:,} in this run"

    def _emit(self, path: Path, parts: Iterator[tuple[CsvSource, Plan]], progress: FileProgress,
              summary: RunSummary, rejects: RejectsWriter) -> bool:
        """Send the lines after progress.replay_from_line; True when the file is through, False when stopping."""
        encoder = Encoder(EncodeOptions(self.settings.options.precision, False, self.settings.options.s2_level))
        batch = self.settings.pace.batch_lines
        resend_from = progress.replay_from_line
        done_lines = 0  # good lines of the file before the current block: the same in every run
        # (last source line, good lines through it) at batch ends: where a later run starts again
        boundaries: deque[tuple[int, int]] | None = None
        last_report = time.monotonic()
        blocks = _blocks_of(parts, encoder, self.settings.options.workers)
        try:
            for block in blocks:
                # Every run reads the whole file, so the rejects file is rewritten whole, never doubled.
                block.count_into(summary)
                block.save_rejects(rejects)
                lines, numbers = block.lines, block.line_numbers
                first = int(np.searchsorted(numbers, resend_from, side="right"))
                if boundaries is None and first < len(lines):
                    boundaries = deque([(resend_from, done_lines + first)])
                for start in range(first, len(lines), batch):
                    count = min(batch, len(lines) - start)
                    if not self.bucket.acquire(count):
                        return False
                    self.writer.write_lines(lines.slice(start, count))
                    self._advance(progress, boundaries, int(numbers[start + count - 1]), done_lines + start + count,
                                  count)
                    if time.monotonic() - last_report >= PROGRESS_EVERY_S:
                        last_report = time.monotonic()
                        self.log.debug(f"{path.name}: sent through line {progress.emitted_through_line:,} "
                                       f"({progress.lines_emitted:,} lines)")
                done_lines += len(lines)
                if self.stop.is_set():
                    return False
        finally:
            blocks.close()  # stops the encoder threads of a file left half-way
        return True

    def _advance(self, progress: FileProgress, boundaries: deque[tuple[int, int]] | None, last_line: int,
                 through: int, count: int) -> None:
        assert boundaries is not None
        progress.emitted_through_line = last_line
        progress.lines_emitted += count
        boundaries.append((last_line, through))
        # Keep the newest boundary that lies at least replay_lines lines back.
        while len(boundaries) > 1 and boundaries[1][1] <= through - self.settings.replay_lines:
            boundaries.popleft()
        progress.replay_from_line = boundaries[0][0]
        self._save()

    def _finish(self, path: Path, progress: FileProgress, summary: RunSummary, rejects: RejectsWriter,
                seconds: float) -> None:
        record = FinishedFile(path.name, "done", None, summary.lines_written, summary.rows_rejected,
                              checkpoint.now_text())
        # Recorded before the move: a crash in between leaves a file whose content is known as
        # sent, and the next scan moves it to done/ without sending it again.
        self.state.finished[progress.sha256] = record
        self.state.current = None
        self._save()
        target = self._move(path, self.spool.done_dir)
        record.moved_to = str(target) if target is not None else None
        self._save()
        counts = (f"{path.name}: done in {seconds:.1f} s: {summary.rows_read:,} rows, {summary.lines_written:,} lines, "
                  f"{summary.rows_rejected:,} rejected; {progress.lines_emitted:,} lines sent in {progress.runs} run(s); "
                  f"moved to {target}")
        if summary.rows_rejected:
            shown, others = shown_reasons(summary.rejects_by_reason)
            reasons = ", ".join([f"{n:,} x {reason}" for reason, n in shown] + ([f"and {others}"] if others else []))
            self.log.warn(f"{counts}; rejected rows ({reasons}) saved to {', '.join(rejects.paths)}")
        else:
            self.log.info(counts)

    def _fail(self, path: Path, progress: FileProgress | None, message: str) -> None:
        """Move an unusable file to error/, remember it, and say so in exactly one E! line."""
        target = self._move(path, self.spool.error_dir, quiet=True)
        where = f"moved to {target}" if target is not None else "could not be moved out of the spool; skipped until restart"
        if progress is not None:
            self.state.finished[progress.sha256] = FinishedFile(path.name, "error", str(target) if target else None,
                                                                progress.lines_emitted, 0, checkpoint.now_text(), message)
        self.state.current = None
        self._save()
        self.log.error(f"{message.rstrip('.')}; {where}")

    def _move(self, path: Path, folder: Path, *, quiet: bool = False) -> Path | None:
        try:
            return spool.move_into(folder, path)
        except OSError as exc:
            self.unmovable.add(path.name)
            if not quiet:
                self.log.error(f"{path.name}: cannot move it to {folder}: {exc.strerror or exc}; skipped until restart")
            return None


def _blocks_of(parts: Iterator[tuple[CsvSource, Plan]], encoder: Encoder, workers: int) -> Iterator[EncodedBlock]:
    """Every part's blocks in file order (the tables of an annotated file one after the other);
    closing this closes the part being read."""
    for part, plan in parts:
        yield from iter_blocks(part, plan, encoder=encoder, workers=workers)


# ------------------------------------------------------------------------------ entry


def run(config_path: str | None, overrides: SettingsOverrides = SettingsOverrides()) -> int:
    """`csv2lp execd`: the exit status (0 after a stop request, 1 on a config or state-file error)."""
    log = Log()
    try:
        settings = load_settings(config_path, overrides)
    except ConverterError as exc:
        log.error(f"csv2lp execd: {exc}")
        return 1
    writer = LineWriter(_claim_stdout())
    stop = StopRequest()
    _install_stop_handlers(stop)
    spooler = Spooler(settings, writer, log, stop)
    status = spooler.run()
    unread = writer.drain(DRAIN_TIMEOUT_S)
    after = f" {time.monotonic() - stop.at:.2f} s after {stop.reason}" if stop.at is not None else ""
    left = f"; {unread:,} bytes were still unread in the pipe" if unread else ""
    log.info(f"exiting with status {status}{after}{left}")
    wait_until_read(2, DRAIN_TIMEOUT_S)
    _hang_up(writer.fd)
    return status


def _hang_up(lines_fd: int) -> None:
    """Close our ends of Telegraf's pipes, then give its readers a moment to see EOF.

    Go's exec.Cmd.Wait closes the read ends once the child is gone; a reader still blocked
    in read() then fails with "read |0: file already closed", which Telegraf logs as an
    error at every shutdown. Readers that got EOF first end quietly.
    """
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in (lines_fd, 1, 2):
        os.dup2(null, fd)  # closes the pipe end; a late write (at interpreter exit) goes nowhere
    os.close(null)
    time.sleep(HANG_UP_GRACE_S)

