"""reader -> encode -> sink, with the counters, the rejects file and --on-error.

Every row read ends in exactly one place: a line in the sink, or a reject (counted by
reason, and saved to the rejects file under --on-error quarantine). Blank lines are not
rows and are counted apart. `RunSummary.balanced` checks the books at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import BinaryIO, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .books import rowerrors
from .books.duplicates import DuplicateMode, DuplicateTracker
from .books.progress import Progress, ProgressCallback
from .books.rejects import RejectsWriter
from .books.rowerrors import RowErrors
from .books.summary import RunSummary
from .encode.encoder import Encoded, EncodeOptions, Encoder
from .encode.time_text import LP_MAX_NS
from .encode.timestamps import range_text
from .errors import BadRowError, ConverterError, OutputError
from .mapping import FieldType, MappingSpec, Plan, Precision
from .mapping.resolve import delimiter_hint
from .parallel import ordered_map
from .plan.file_plan import parts_and_plans
from .plan.options import ConvertOptions, OnError
from .plan.prepare import Prepared, prepare
from .read.settings import blank_rows
from .read.source import Block, CsvSource
from .read.inputs import file_size, open_source
from .sinks import LineSink
from .sinks.file import WriteFailed


def convert(inputs: Sequence[str] | Prepared, *, mapping: MappingSpec, options: ConvertOptions, sink: LineSink,
            progress: ProgressCallback | None = None, stdin: BinaryIO | None = None) -> RunSummary:
    """Convert every input into `sink`. Raises ConverterError (with `.summary`) when a run cannot finish.

    `inputs` as given (then checked here, see `prepare`), or already prepared."""
    started = time.perf_counter()
    summary = RunSummary()
    encoder = Encoder(EncodeOptions(options.precision, options.replace_control_chars, options.s2_level,
                                    options.max_string_bytes))
    rejects: RejectsWriter | None = None
    try:
        prepared = inputs if isinstance(inputs, Prepared) else prepare(inputs, mapping=mapping, options=options)
        if options.on_error is OnError.QUARANTINE:
            # A second header's rejects go to a numbered file (rejects.2.csv): claimed when it is made.
            rejects = RejectsWriter(options.rejects_path, claim=partial(prepared.writes.claim, "--rejects"))
        run = _Run(summary, encoder, rejects, options, sink, progress)
        run.bytes_total = _total_size(prepared.items)
        for item in prepared.items:
            source = open_source(item, delimiter=options.delimiter, block_size=options.block_size, stdin=stdin,
                                 settings=options.read, max_expansion=options.max_expansion,
                                 max_columns=options.max_columns)
            try:
                for number, (part, plan) in enumerate(parts_and_plans(source, item, mapping, options)):
                    run.convert_source(part, plan, count_file=number == 0)
            finally:
                run.bytes_before += source.bytes_read
                source.close()
        if rejects is not None:
            rejects.close()  # its last rows: a failure to write them ends the run like any other
    except ConverterError as exc:
        if rejects is not None:
            try:
                rejects.close()  # the rows rejected before the failure are saved
            except OutputError:
                pass  # counted in rows_unsaved; the first failure is the one to report
        exc.summary = summary  # type: ignore[attr-defined]
        raise
    finally:
        if rejects is not None:
            summary.rejects_files = rejects.paths
            summary.rejects_unsaved = rejects.rows_unsaved
        summary.inferred_types = {k: v.value for k, v in encoder.inferred.items()}
        summary.bytes_written = getattr(sink, "bytes_written", 0)
        summary.seconds = time.perf_counter() - started
    return summary


def _total_size(items: list[str]) -> int | None:
    sizes = [file_size(item) for item in items]
    return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)


@dataclass(frozen=True)
class _TypedBlock:
    block: Block
    batch: pa.RecordBatch  # the block's cells without blank rows
    lines_of_rows: np.ndarray
    blank_lines: int
    types: dict[str, FieldType]
    warnings: list[str]

    def early_errors(self) -> RowErrors | None:
        """The rows rejected before encoding: those an unbalanced quote ran through (quotes.py)."""
        runaway = self.block.runaway
        if runaway is None:
            return None
        if self.blank_lines:  # the batch lost its blank rows: number the runaway rows in it
            runaway = runaway.taken(pc.invert(blank_rows(self.block.cells.columns)).to_numpy(zero_copy_only=False))
        errors = RowErrors(self.batch.num_rows)
        errors.add_each(runaway.rows, [span.reason for span in runaway.spans])
        return errors


@dataclass
class EncodedBlock:
    """One block of one file, encoded: its lines, the source line of each, and its rejects.

    Writing the lines is the caller's: `convert()` sends them to a sink at once, `execd`
    slices them into paced batches and records how far it got in source line numbers.
    """

    source: CsvSource
    block: Block
    batch: pa.RecordBatch  # the block's rows without blank lines
    lines_of_rows: np.ndarray  # physical line of each row of `batch`
    blank_lines: int
    encoded: Encoded
    duplicates: int = 0  # points that repeat an earlier (series, time)
    duplicates_unchecked: int = 0  # rows too old for the duplicate window
    points_nudged: int = 0
    warnings: list[str] = field(default_factory=list)  # about the input or its columns, for the summary

    @property
    def lines(self) -> pa.Array:
        """One line per good row, in file order, each ending in a newline."""
        return self.encoded.lines

    @cached_property
    def bad_rows(self) -> np.ndarray:
        """Indices into `batch` of the rows the encoder rejected."""
        return self.encoded.errors.rows()

    @cached_property
    def line_numbers(self) -> np.ndarray:
        """Physical source line of each entry of `lines` (aligned with it)."""
        if not self.bad_rows.size:
            return self.lines_of_rows
        return np.delete(self.lines_of_rows, self.bad_rows)

    @property
    def rows_read(self) -> int:
        return self.batch.num_rows + len(self.block.invalid)

    @property
    def rows_rejected(self) -> int:
        return int(self.bad_rows.size) + len(self.block.invalid)

    def count_into(self, summary: RunSummary) -> None:
        """Add this block's rows, lines and rejects (by reason) to `summary`."""
        summary.rows_read += self.rows_read
        summary.lines_written += len(self.lines)
        summary.rows_rejected += self.rows_rejected
        summary.fields_dropped += self.encoded.fields_dropped
        summary.blank_lines += self.blank_lines
        summary.duplicate_points += self.duplicates
        summary.duplicates_unchecked += self.duplicates_unchecked
        summary.points_nudged += self.points_nudged
        summary.rejects_by_reason.update(self.encoded.errors.counts())
        for row in self.block.invalid:
            summary.rejects_by_reason[row.reason.text] += 1
        runaways = self.block.runaways
        summary.unbalanced_quotes += len(runaways)
        summary.lines_swallowed += sum(r.lines_swallowed for r in runaways)
        summary.warn(self.warnings)

    def save_rejects(self, rejects: RejectsWriter) -> None:
        """Every rejected row of the block (failed checks and rows Arrow could not split), in line order."""
        if not (self.bad_rows.size or self.block.invalid):
            return
        source, bad, errors = self.source, self.bad_rows, self.encoded.errors
        # The checked rows' cells stay Arrow arrays (one take per column): the writer formats them all at once.
        cells = self.batch.take(pa.array(bad, pa.int64())).columns
        reasons, values = (errors.reason_at(bad), errors.value_at(bad)) if bad.size else ([], [])
        unsplit = [(row.line, row.reason.text, row.text) for row in self.block.invalid]
        rejects.write_rows(source.header, source.name, self.lines_of_rows[bad], reasons, values, cells,
                           unsplit=unsplit, delimiter=source.delimiter)


def iter_part_blocks(parts: Iterator[tuple[CsvSource, Plan]], *, encoder: Encoder,
                     workers: int = 1) -> Iterator[EncodedBlock]:
    """Every part's blocks in file order (the tables of an annotated file one after the other);
    closing this closes the part being read."""
    for part, plan in parts:
        yield from iter_blocks(part, plan, encoder=encoder, workers=workers)


def iter_blocks(source: CsvSource, plan: Plan, *, encoder: Encoder, workers: int = 1,
                duplicates: DuplicateTracker | None = None) -> Iterator[EncodedBlock]:
    """Read blocks here, encode them on `workers` threads, hand them out in file order.

    `encoder` keeps the types it inferred (decided here, in file order) for later blocks;
    `duplicates`, when given, checks every block's points in file order too.
    """

    unwritten = dict(plan.unwritten)  # columns not seen with a value yet
    # One column whose name splits by another delimiter: most likely read with the wrong -d.
    hint = delimiter_hint(plan.header) if len(plan.header) == 1 else ""
    wrong_delimiter = [f"{source.name}: the header is one column, {plan.header[0]!r}.{hint}"] if hint else []

    def typed_blocks() -> Iterator[_TypedBlock]:
        for number, block in enumerate(source.blocks()):
            batch, lines_of_rows, blank = split_blank_rows(block)
            noted = len(encoder.notes)
            types = encoder.decide_types(plan, batch, where=f"{source.name}:{block.first_line}")
            warnings = block.notes + [f"{source.name}: {note}" for note in encoder.notes[noted:]] + \
                _values_left_out(source, plan, batch, unwritten) + (wrong_delimiter if number == 0 else [])
            yield _TypedBlock(block, batch, lines_of_rows, blank, types, warnings)

    def encode(typed: _TypedBlock) -> Encoded:
        return encoder.encode_typed(plan, typed.batch, typed.types, typed.early_errors())

    # Two blocks read ahead of the encoders smooth out blocks that take longer to encode
    # (fishers x 20: ~3 % faster than one, alternating runs); the second cost ~25 MB of peak RSS.
    for typed, encoded in ordered_map(encode, typed_blocks(), workers=workers, ahead=2):
        block = EncodedBlock(source, typed.block, typed.batch, typed.lines_of_rows, typed.blank_lines, encoded,
                             warnings=typed.warnings)
        if duplicates is not None and duplicates.mode is not DuplicateMode.OFF:
            check_duplicates(block, duplicates, encoder.options.precision)
        yield block


def _values_left_out(source: CsvSource, plan: Plan, batch: pa.RecordBatch, unwritten: dict[int, str]) -> list[str]:
    """A warning for each column of `unwritten` that has a value in this batch (then no more for it)."""
    found = [index for index in unwritten if batch.column(index).null_count < batch.num_rows]
    return [f"{source.name}: column {plan.header[index]!r} holds values that reach no line: {unwritten.pop(index)}"
            for index in found]


DUPLICATE_POINT = rowerrors.Reason(
    "duplicate point: same measurement, tags and time as an earlier row",
    "InfluxDB would keep only the last of them; fix the source, or use --duplicates nudge to keep both",
)


def nudged_past_range(precision: Precision) -> rowerrors.Reason:
    return rowerrors.Reason(
        f"time past the end of line protocol's range after --duplicates nudge (-p {precision.value}: "
        f"{range_text(precision)})",
        "the row repeats a series and time at the very end of the range with no later time left to move it to; "
        "fix the source's times, or use --duplicates warn or error",
    )


def check_duplicates(block: EncodedBlock, tracker: DuplicateTracker, precision: Precision = Precision.NS) -> None:
    """Count the block's duplicate points; reject them (error) or move their times (nudge: a row
    with no free time left before the end of the range is rejected instead)."""
    encoded = block.encoded
    if encoded.times is None or encoded.series_codes is None or not len(encoded.lines):
        return
    assert encoded.series_strings is not None
    found = tracker.check(encoded.series_codes, encoded.series_strings.to_pylist(), encoded.times)
    block.duplicates, block.duplicates_unchecked = int(found.duplicate.sum()), found.unchecked
    if not block.duplicates:
        return
    if tracker.mode is DuplicateMode.NUDGE:
        moved = np.flatnonzero(found.nudged)
        block.points_nudged = int(moved.size)
        old_lines = encoded.lines.take(pa.array(moved)).to_pylist()
        # Python per nudged line: the repair path. The time is the line's last word.
        new_lines = [line[: line.rindex(" ") + 1] + f"{found.times[i]}\n" for line, i in zip(old_lines, moved)]
        encoded.lines = pc.replace_with_mask(encoded.lines, pa.array(found.nudged), pa.array(new_lines, pa.string()))
        encoded.times = found.times
        if found.beyond is not None and found.beyond.any():
            _reject_lines(block, found.beyond, nudged_past_range(precision))
    elif tracker.mode is DuplicateMode.ERROR:
        _reject_lines(block, found.duplicate, DUPLICATE_POINT)


def _reject_lines(block: EncodedBlock, drop: np.ndarray, reason: rowerrors.Reason) -> None:
    """Reject the rows whose lines `drop` marks (aligned with the lines), and take those lines out."""
    encoded = block.encoded
    assert encoded.series_codes is not None and encoded.times is not None
    written = np.flatnonzero(pc.invert(encoded.errors.mask).to_numpy(zero_copy_only=False)) \
        if encoded.errors.mask is not None else np.arange(block.batch.num_rows)
    reject = np.zeros(block.batch.num_rows, dtype=bool)
    reject[written[drop]] = True
    encoded.errors.add(pa.array(reject), reason, block.batch.column(0).cast(pa.binary()))
    keep = ~drop
    encoded.lines = encoded.lines.filter(pa.array(keep))
    encoded.series_codes, encoded.times = encoded.series_codes[keep], encoded.times[keep]


class _Run:
    """The state of one convert() call."""

    def __init__(self, summary: RunSummary, encoder: Encoder, rejects: RejectsWriter | None,
                 options: ConvertOptions, sink: LineSink, progress: ProgressCallback | None) -> None:
        self.summary = summary
        self.encoder = encoder
        self.rejects = rejects
        self.options = options
        self.sink = sink
        self.progress = progress
        self.bytes_before = 0
        self.bytes_total: int | None = None
        # One tracker for the whole run: duplicates are found across files too.
        self.duplicates = DuplicateTracker(options.duplicates, options.duplicates_window,
                                           last_time=LP_MAX_NS // options.precision.ns_per_unit)

    def convert_source(self, source: CsvSource, plan: Plan, *, count_file: bool = True) -> None:
        """Blocks come encoded and in file order; each is written here, then counted."""
        self.summary.files += count_file
        for encoded in iter_blocks(source, plan, encoder=self.encoder, workers=self.options.workers,
                                   duplicates=self.duplicates):
            self._finish_block(encoded)
            if self.progress is not None:
                self.progress(Progress(self.bytes_before + source.bytes_read, self.bytes_total, self.summary.rows_read))

    def _finish_block(self, encoded: EncodedBlock) -> None:
        if self.options.on_error is OnError.FAIL and encoded.rows_rejected:
            self._stop_at_first_bad_row(encoded)
        try:
            self._write(encoded.encoded)
        except WriteFailed as exc:
            # The block's rows were read: they are counted, the lines the output did not take as not written.
            encoded.count_into(self.summary)
            self._not_written(len(encoded.lines) - exc.lines_done)
            if self.rejects is not None:
                try:
                    encoded.save_rejects(self.rejects)
                except OutputError:
                    pass  # counted by the writer; the output's failure is the one to report
            raise
        encoded.count_into(self.summary)
        if self.rejects is not None:
            encoded.save_rejects(self.rejects)

    def _write(self, encoded: Encoded) -> None:
        """The block's lines to the sink; with each line's series when the sink keys by it (Kafka) and the
        encoder knows them, so that the sink need not find them in the lines' bytes again."""
        write_series = getattr(self.sink, "write_series_lines", None)
        if write_series is not None and encoded.series_prefix and encoded.series_codes is not None \
                and encoded.series_strings is not None:
            write_series(encoded.lines, encoded.series_codes, encoded.series_strings)
        else:
            self.sink.write_lines(encoded.lines)

    def _not_written(self, lines: int) -> None:
        self.summary.lines_written -= lines
        self.summary.lines_not_written += lines

    def _stop_at_first_bad_row(self, block: EncodedBlock) -> None:
        encoded, lines_of_rows, bad_rows = block.encoded, block.lines_of_rows, block.bad_rows
        candidates: list[tuple[int, str, str, bytes | None]] = []
        if bad_rows.size:
            first = bad_rows[:1]
            reason = encoded.errors.reason_at(first)[0]
            fix = encoded.errors.reasons[reason].fix
            candidates.append((int(lines_of_rows[first[0]]), reason, fix, encoded.errors.value_at(first)[0]))
        for invalid in block.block.invalid[:1]:
            reason = invalid.reason
            candidates.append((invalid.line, reason.text, reason.fix, invalid.text.encode("utf-8", "surrogateescape")))
        line, reason, fix, value = min(candidates, key=lambda c: c[0])
        runaway = next((r for r in block.block.runaways if r.reason.text == reason), None)
        if runaway is not None:
            self.summary.unbalanced_quotes += 1
            self.summary.lines_swallowed += runaway.lines_swallowed
        # Rows before the bad one are good: write them, so the output ends exactly there.
        good_before = int(np.count_nonzero(lines_of_rows < line)) - int(np.count_nonzero(lines_of_rows[bad_rows] < line))
        try:
            self.sink.write_lines(encoded.lines.slice(0, good_before))
        except WriteFailed as exc:
            self.summary.rows_read += good_before
            self.summary.lines_written += good_before
            self._not_written(good_before - exc.lines_done)
            raise
        self.summary.blank_lines += block.blank_lines
        self.summary.lines_written += good_before
        self.summary.rows_read += good_before + 1
        self.summary.rows_rejected += 1
        self.summary.rejects_by_reason[reason] += 1
        shown = "" if value is None else f": {value.decode('utf-8', errors='replace')!r}"
        message = (f"{block.source.name}:{line}: {reason}{shown}. To fix: {fix}. (--on-error fail stops at the "
                   f"first bad row; --on-error quarantine saves bad rows to a rejects file and goes on.)")
        self.summary.stopped_at = message
        raise BadRowError(message)


def split_blank_rows(block: Block) -> tuple[pa.RecordBatch, np.ndarray, int]:
    """The block's rows without blank ones (lines without a single cell: blank lines, `,,,`, which are
    not rows), their line numbers, and how many were blank."""
    batch, lines_of_rows = block.cells, block.row_lines()
    blank = blank_rows(batch.columns) if batch.num_rows else None
    n_blank = int(pc.sum(blank).as_py() or 0) if blank is not None else 0
    if n_blank == 0:
        return batch, lines_of_rows, 0
    keep = pc.invert(blank)
    return batch.filter(keep), lines_of_rows[keep.to_numpy(zero_copy_only=False)], n_blank
