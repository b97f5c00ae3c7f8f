"""The loop of `csv2lp execd`: pick a settled file from the spool, convert it, emit its lines
in batches under the emission gate, checkpoint after every batch, move the file on once
its lines are delivered.

A batch is delivered when the gate says so (gates.py, flow.py): under flow control, once
Telegraf's own numbers show it written to every watched output (delivery.py); without
them, once it is in the pipe. Until its last batch is delivered a file stays in the spool
and in the state (`current`, then `unconfirmed`), and the next file may start meanwhile.

Progress is checkpointed after every batch (checkpoint.py). A resumed run reads the file
from its start (nothing can seek in a .gz) and sends the lines after `replay_from_line`:
the last line confirmed written by Telegraf, or without its numbers `replay_lines` or so
before the checkpoint (what sat in the pipe). A start sends every open file again so,
oldest first, as does a running csv2lp when Telegraf reports a drop while its lines were
buffered. Re-sent lines are the same points, which InfluxDB stores once. It stays alive
when the spool is empty: Telegraf restarts a child that exits, even with status 0.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import Iterator

import numpy as np

from .. import __version__
from ..encode.encoder import EncodeOptions, Encoder
from ..errors import ConverterError
from ..mapping import Plan
from ..pipeline import iter_part_blocks
from ..plan.file_plan import parts_and_plans
from ..read.source import CsvSource
from ..read.inputs import open_source
from ..books.rejects import RejectsWriter
from ..books.summary import RunSummary
from . import checkpoint, spool
from .arrivals import Arrivals
from .checkpoint import FileProgress, FinishedFile, State
from .file_report import report_done
from .gates import Gate
from .protocol import LineWriter, Log, StopRequest
from .settings import DEFAULT_REPLAY_LINES, ExecdSettings, in_config_terms

PROGRESS_EVERY_S = 10.0
DELIVERY_WAIT_S = 0.25  # idle with lines in Telegraf's buffer: how often to look for their delivery


class _Fatal(Exception):
    """Nothing can go on (the state file cannot be written): exit 1, Telegraf restarts us."""


class _Resend(Exception):
    """Telegraf dropped metrics while lines of ours were in its buffer: send every open file again."""


class Spooler:
    def __init__(self, settings: ExecdSettings, writer: LineWriter, gate: Gate, log: Log, stop: StopRequest) -> None:
        self.settings = settings
        self.spool = settings.spool
        self.writer = writer
        self.gate = gate  # may n lines go now? (flow.py: Telegraf's numbers, the fixed pace, or nothing)
        self.log = log
        self.stop = stop
        self.state = State()
        self.arrivals: Arrivals | None = None  # made once the spool folder exists
        self.unmovable: set[str] = set()  # names we failed to move out of the spool: skip, do not loop
        self.outstanding: dict[str, int] = {}  # sha256 -> batches written and not yet delivered
        self.ended: dict[str, tuple[RunSummary, list[str], float]] = {}  # sha256 -> all lines out: its counts

    def run(self) -> int:
        try:
            self._prepare()
            while not self.stop.is_set():
                try:
                    self._collect()
                    candidate = self._next_file()
                    if candidate is None:
                        assert self.arrivals is not None
                        if self.gate.pending():
                            self.gate.wait_for_delivery(DELIVERY_WAIT_S)
                        else:
                            self.arrivals.wait(self.spool.poll_seconds)
                        continue
                    self._send(candidate.path)
                except _Resend:
                    continue
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
            spool.prepare_folders(self.spool)
        except ConverterError as exc:
            raise _Fatal(str(exc)) from None
        try:
            if checkpoint.hold_lock(self.spool.state_file, self.stop.event, warn=self.log.warn) is None:
                return  # stopped while another csv2lp held the state file
        except OSError as exc:
            raise _Fatal(f"cannot lock the state file {self.spool.state_file}: {exc.strerror or exc}.") from None
        self.arrivals = Arrivals(self.spool.dir)
        self.stop.also_wake(self.arrivals.wake)
        s = self.settings  # said once the folder is watched: a file renamed in from now on is seen at once
        self.log.info(f"csv2lp execd {__version__}: watching {self.spool.dir} for {', '.join(self.spool.patterns)} "
                      f"every {self.spool.poll_seconds:g} s; {s.mapping_name}, precision {s.options.precision.value}; "
                      f"state in {self.spool.state_file}")
        if not self.arrivals.watching:
            self.log.info(f"no inotify for {self.spool.dir}: a dropped file is taken once it has not changed for "
                          f"{self.spool.poll_seconds:g} s")
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
        for progress in self.state.unconfirmed:  # its lines may have died with Telegraf's buffer
            progress.emitted_all = False
            self.log.info(f"{progress.identity.name}: was sent, but not confirmed written by Telegraf after line "
                          f"{progress.replay_from_line:,}; sending those lines again first")
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
            assert self.arrivals is not None
            ready = spool.scan(self.spool.dir, self.spool.patterns, settle_seconds=self.spool.poll_seconds,
                               renamed_in=self.arrivals.renamed_in)
        except OSError as exc:
            raise _Fatal(f"cannot list the spool folder {self.spool.dir}: {exc.strerror or exc}.") from None
        ready = [c for c in ready if c.path.name not in self.unmovable]
        by_name = {c.path.name: c for c in ready}
        for progress in self.state.open_files():  # open files first, oldest first
            if progress.emitted_all:
                continue  # all out, waiting for Telegraf's word
            name = progress.identity.name
            if name in by_name:
                return by_name[name]
            if (self.spool.dir / name).exists():
                return None  # being replaced or touched: it goes first once it has settled
            self.log.warn(f"{name}: was being sent (through line {progress.emitted_through_line:,}) "
                          f"but is no longer in the spool; forgetting it")
            self.state.close(progress)
            self._save()
        waiting = {p.identity.name for p in self.state.open_files()}
        return next((c for c in ready if c.path.name not in waiting), None)

    # -- one file --------------------------------------------------------------------

    def _send(self, path: Path) -> None:
        try:
            identity = spool.identity(path)
        except OSError as exc:
            self._fail(path, None, f"{path}: cannot read: {exc.strerror or exc}.")
            return
        progress = next((p for p in self.state.open_files() if p.identity.name == path.name), None)
        if progress is not None and progress.identity != identity:
            self.log.warn(f"{path.name}: changed since it was started (through line "
                          f"{progress.emitted_through_line:,}); sending it from the start")
            self.state.close(progress)
            progress = None
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
            options = self.settings.options
            source = open_source(str(path), delimiter=options.delimiter, block_size=options.block_size,
                                 max_expansion=options.max_expansion, max_columns=options.max_columns)
        except ConverterError as exc:
            self._fail(path, progress, str(exc))
            return
        try:
            parts = parts_and_plans(source, str(path), self.settings.mapping, self.settings.options)
            finished = self._emit(path, parts, progress, summary, rejects)
        except (BrokenPipeError, _Fatal, _Resend):
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
            self._emitted_all(progress, summary, rejects, time.monotonic() - began)

    @staticmethod
    def _sent_text(progress: FileProgress, sent_before: int) -> str:
        return f"stopped after {progress.lines_emitted:,} lines were sent, {progress.lines_emitted - sent_before:,} in this run"

    def _emit(self, path: Path, parts: Iterator[tuple[CsvSource, Plan]], progress: FileProgress,
              summary: RunSummary, rejects: RejectsWriter) -> bool:
        """Send the lines after progress.replay_from_line; True when the file is through, False when stopping."""
        options = self.settings.options
        encoder = Encoder(EncodeOptions(options.precision, False, options.s2_level, options.max_string_bytes))
        batch = self.settings.batch_lines
        resend_from = progress.replay_from_line
        done_lines = 0  # good lines of the file before the current block: the same in every run
        # (last source line, good lines through it) at batch ends: where a later run starts again
        boundaries: deque[tuple[int, int]] | None = None
        last_report = time.monotonic()
        blocks = iter_part_blocks(parts, encoder=encoder, workers=self.settings.options.workers)
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
                    if not self.gate.acquire(count):
                        return False
                    self.writer.write_lines(lines.slice(start, count))
                    last_line = int(numbers[start + count - 1])
                    mark, confirming = self.gate.sent(count, (progress, last_line))
                    if mark is not None:
                        self.writer.write_text(mark)  # follows the batch through Telegraf (delivery.py)
                    self.outstanding[progress.sha256] = self.outstanding.get(progress.sha256, 0) + 1
                    self._advance(progress, boundaries, last_line, done_lines + start + count, count,
                                  weak=not confirming)
                    self._collect()
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
                 through: int, count: int, *, weak: bool) -> None:
        assert boundaries is not None
        progress.emitted_through_line = last_line
        progress.lines_emitted += count
        boundaries.append((last_line, through))
        # Keep the newest boundary that lies at least replay_lines lines back.
        while len(boundaries) > 1 and boundaries[1][1] <= through - self._replay_lines():
            boundaries.popleft()
        if weak:  # nobody will confirm it: the replay window is the guess (a confirmed batch moves it in _collect)
            progress.replay_from_line = max(progress.replay_from_line, boundaries[0][0])
        self._save()

    def _collect(self) -> None:
        """Take the gate's deliveries: move each file whose lines are all delivered to done/."""
        delivered = self.gate.delivered()
        for (progress, last_line), confirmed in delivered:
            if confirmed:
                progress.replay_from_line = max(progress.replay_from_line, last_line)
            left = self.outstanding.get(progress.sha256, 0) - 1
            self.outstanding[progress.sha256] = max(left, 0)
        lost = self.gate.lost()
        if lost is not None:
            self.gate.forget_pending()
            self.outstanding.clear()
            opened = self.state.open_files()
            for progress in opened:
                progress.emitted_all = False
            self._save()
            names = ", ".join(p.identity.name for p in opened)
            self.log.error(f"{lost}; sending again every line not confirmed written, of {names or 'no file'}")
            raise _Resend()
        for progress in list(self.state.unconfirmed):
            if progress.emitted_all and not self.outstanding.get(progress.sha256):
                self._finish(progress)
        if delivered:
            self._save()

    def _emitted_all(self, progress: FileProgress, summary: RunSummary, rejects: RejectsWriter,
                     seconds: float) -> None:
        """Every line of the file is out: it waits in `unconfirmed` until the gate has delivered them all."""
        progress.emitted_all = True
        self.ended[progress.sha256] = (summary, list(rejects.paths), seconds)
        if self.state.current is progress:
            self.state.current = None
            self.state.unconfirmed.append(progress)
        self._save()
        if self.outstanding.get(progress.sha256):
            self.log.info(f"{progress.identity.name}: all {summary.lines_written:,} lines are with Telegraf; the "
                          f"file moves to done/ once Telegraf has written them to every output")
        self._collect()

    def _replay_lines(self) -> int:
        """Set in [pacing], or what the gate lets Telegraf's buffer hold: all a kill of Telegraf can take."""
        if self.settings.replay_lines is not None:
            return self.settings.replay_lines
        return self.gate.window_lines() or DEFAULT_REPLAY_LINES

    def _finish(self, progress: FileProgress) -> None:
        path = self.spool.dir / progress.identity.name
        summary, rejects_paths, seconds = self.ended.pop(progress.sha256)
        self.outstanding.pop(progress.sha256, None)
        record = FinishedFile(path.name, "done", None, summary.lines_written, summary.rows_rejected,
                              checkpoint.now_text())
        # Recorded before the move: a crash in between leaves a file whose content is known as
        # sent, and the next scan moves it to done/ without sending it again.
        self.state.finished[progress.sha256] = record
        self.state.close(progress)
        self._save()
        gone = not path.exists()  # deleted (or moved away) while it was being sent: nothing to move
        target = None if gone else self._move(path, self.spool.done_dir)
        record.moved_to = str(target) if target is not None else None
        self._save()
        where = (f"moved to {target}" if target is not None else
                 "it was deleted from the spool while being sent, so it is not in done/" if gone else
                 "it could not be moved to done/ (said above)")
        report_done(self.log, path.name, seconds=seconds, summary=summary, lines_sent=progress.lines_emitted,
                    runs=progress.runs, where=where, rejects_paths=rejects_paths,
                    config_path=self.settings.config_path)

    def _fail(self, path: Path, progress: FileProgress | None, message: str) -> None:
        """Move an unusable file to error/, remember it, and say so in exactly one E! line."""
        gone = not path.exists()  # deleted while it was read: nothing to move
        target = None if gone else self._move(path, self.spool.error_dir, quiet=True)
        where = (f"moved to {target}" if target is not None else "it was deleted from the spool" if gone else
                 "could not be moved out of the spool; skipped until restart")
        if progress is not None:
            self.state.finished[progress.sha256] = FinishedFile(path.name, "error", str(target) if target else None,
                                                                progress.lines_emitted, 0, checkpoint.now_text(), message)
            self.state.close(progress)
            self.outstanding.pop(progress.sha256, None)
        self._save()
        self.log.error(f"{in_config_terms(message, self.settings.config_path).rstrip('.')}; {where}")

    def _move(self, path: Path, folder: Path, *, quiet: bool = False) -> Path | None:
        if self.arrivals is not None:
            self.arrivals.forget(path.name)
        try:
            return spool.move_into(folder, path)
        except OSError as exc:
            self.unmovable.add(path.name)
            if not quiet:
                self.log.error(f"{path.name}: cannot move it to {folder}: {exc.strerror or exc}; skipped until restart")
            return None

