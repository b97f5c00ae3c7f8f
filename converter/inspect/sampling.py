"""One pass over a sample of the inputs with convert's own plan and encoder, counted into an InspectReport."""

from __future__ import annotations

from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..books.duplicates import DuplicateMode, DuplicateTracker
from ..books.summary import RunSummary
from ..encode import cells
from ..encode.encoder import EncodeOptions, Encoder
from ..encode.row_keys import RowKeyedField
from ..formats.annotated import InputFormat
from ..mapping import FieldType, MappingSpec, OtherColumns, Plan
from ..pipeline import iter_blocks
from ..plan.file_plan import parts_and_plans
from ..plan.options import ConvertOptions
from ..plan.prepare import check_inputs
from ..read.inputs import open_source
from ..read.source import DEFAULT_BLOCK_SIZE, DEFAULT_MAX_COLUMNS, CsvSource
from . import report as reports
from .report import ColumnReport, InspectReport, Role, _cardinality_warnings, _keys_text


def inspect_inputs(inputs: Sequence[str], *, mapping: MappingSpec, delimiter: str = ",", sample_lines: int = 5,
                   block_size: int = DEFAULT_BLOCK_SIZE, input_format: InputFormat = InputFormat.AUTO,
                   max_columns: int = DEFAULT_MAX_COLUMNS) -> InspectReport:
    """Read every input once, as convert would, and report on each column. Writes nothing."""
    options = ConvertOptions(delimiter=delimiter, block_size=block_size, input_format=input_format,
                             max_columns=max_columns)
    items = check_inputs(inputs, mapping, options)  # mapping errors before any row is read
    run = _Inspection(mapping, sample_lines)
    for item in items:
        source = open_source(item, delimiter=delimiter, block_size=block_size, max_columns=max_columns)
        try:
            for part, plan in parts_and_plans(source, item, mapping, options):
                run.inspect_source(part, plan)
        finally:
            source.close()
    return run.report(items)


class _Inspection:
    """Counters for one inspect_inputs() call, fed block by block."""

    def __init__(self, mapping: MappingSpec, sample_lines: int) -> None:
        self.mapping = mapping
        self.sample_lines = sample_lines
        self.encoder = Encoder(EncodeOptions())
        self.duplicates = DuplicateTracker(DuplicateMode.WARN)
        self.counts = RunSummary()  # rows, lines, rejects and blank lines, as convert counts them
        self.columns: dict[str, ColumnReport] = {}
        self.measurements: list[str] = []  # constant measurements, one per file at most
        self.series: set[tuple] = set()
        self.series_over_cap = False
        self.sample: list[str] = []

    def inspect_source(self, source: CsvSource, plan: Plan) -> None:
        if plan.measurement is not None and plan.measurement not in self.measurements:
            self.measurements.append(plan.measurement)
        roles = self._roles(plan)
        # The blocks convert would write, encoded as convert encodes them (one thread: the counts
        # of distinct values are taken block by block), counted into the books as convert counts.
        for encoded_block in iter_blocks(source, plan, encoder=self.encoder, workers=1, duplicates=self.duplicates):
            encoded_block.count_into(self.counts)
            batch, encoded = encoded_block.batch, encoded_block.encoded
            reasons = encoded.errors.counts()

            for index, report in roles:
                raw = batch.column(index)
                report.rows += batch.num_rows
                report.empty += raw.null_count
            self._attribute_rejects(roles, reasons)

            kept = batch if encoded.errors.mask is None else batch.filter(pc.invert(encoded.errors.mask))
            if encoded.fields_dropped:
                self._count_dropped(plan, kept)
            self._count_distinct(plan, kept)
            self._count_series(plan, kept)
            if len(self.sample) < self.sample_lines:
                wanted = self.sample_lines - len(self.sample)
                self.sample += [line.rstrip("\n") for line in encoded.lines.slice(0, wanted).to_pylist()]

    # ------------------------------------------------------------ roles

    def _roles(self, plan: Plan) -> list[tuple[int, ColumnReport]]:
        """This file's columns with their reports (shared by name across files)."""
        by_index: dict[int, ColumnReport] = {}
        if plan.measurement_index is not None:
            by_index[plan.measurement_index] = ColumnReport(plan.header[plan.measurement_index], Role.MEASUREMENT)
        for tag in plan.tags:
            by_index[tag.index] = ColumnReport(tag.column, Role.TAG, key=tag.key)
        for fld in plan.fields:
            declared = None if fld.type is FieldType.AUTO else fld.type.value
            if isinstance(fld, RowKeyedField):  # the lines carry each row's key, not the placeholder
                by_index[fld.key_index] = ColumnReport(fld.key_column, Role.FIELD_KEY, type="string")
                by_index[fld.index] = ColumnReport(fld.column, Role.FIELD, type=declared, keys_from=fld.key_column,
                                                   _plan_key=fld.key)
            else:
                by_index[fld.index] = ColumnReport(fld.column, Role.FIELD, key=fld.key, type=declared, _plan_key=fld.key)
        if plan.time is not None:
            by_index[plan.time.index] = ColumnReport(plan.time.column, Role.TIME, type=plan.time.format)
        unwritten = dict(plan.unwritten)
        pairs = []
        for index, column in enumerate(plan.header):
            report = by_index.get(index)
            if report is None:
                because = ("excluded" if column in self.mapping.exclude
                           else "not mapped, other_columns = ignore" if self.mapping.other_columns is OtherColumns.IGNORE
                           else f"left out: {unwritten[index]}" if index in unwritten
                           else "not mapped")
                report = ColumnReport(column, Role.IGNORED, ignored_because=because)
            pairs.append((index, self.columns.setdefault(column, report)))
        return pairs

    # ------------------------------------------------------------ counters

    def _attribute_rejects(self, roles: list[tuple[int, ColumnReport]], reasons: dict[str, int]) -> None:
        # Every per-column reject reason names its column as `column 'NAME'` (see books/rowerrors.py).
        for text, count in reasons.items():
            for _, report in roles:
                if f"column {report.column!r}" in text:
                    report.rejected += count
                    break

    def _count_dropped(self, plan: Plan, batch: pa.RecordBatch) -> None:
        """NaN / ±Inf per float field in the rows that become lines (as the Encoder counts them);
        only run for blocks where the Encoder dropped some."""
        for fld in plan.fields:
            ftype = fld.type if fld.type is not FieldType.AUTO else self.encoder.inferred.get(fld.key)
            raw = batch.column(fld.index)
            if ftype is not FieldType.FLOAT or raw.null_count == len(raw):
                continue
            values = cells.to_float(raw).values
            non_finite = pc.fill_null(pc.invert(pc.is_finite(values)), False)
            self.columns[fld.column].dropped += int(pc.sum(non_finite).as_py() or 0)

    def _count_distinct(self, plan: Plan, batch: pa.RecordBatch) -> None:
        indices = [t.index for t in plan.tags]
        indices += [f.key_index for f in plan.fields if isinstance(f, RowKeyedField)]
        if plan.measurement_index is not None:
            indices.append(plan.measurement_index)
        for index in indices:
            report = self.columns[plan.header[index]]
            if report.distinct_over_cap:
                continue
            report._values.update(pc.drop_null(pc.unique(batch.column(index))).to_pylist())
            if len(report._values) > reports.DISTINCT_CAP:
                report.distinct_over_cap = True
                report._values = set()

    def _count_series(self, plan: Plan, batch: pa.RecordBatch) -> None:
        """Distinct (measurement, tag set) combinations: Arrow groups the block, Python only sees the groups."""
        if self.series_over_cap or batch.num_rows == 0:
            return
        keyed = [("", i) for i in ([plan.measurement_index] if plan.measurement_index is not None else [])]
        keyed += [(t.key, t.index) for t in plan.tags]
        if not keyed:
            self.series.add((plan.measurement,))
            return
        names = [f"k{n}" for n in range(len(keyed))]
        table = pa.table([batch.column(index) for _, index in keyed], names=names)
        groups = table.group_by(names, use_threads=False).aggregate([])
        columns = [groups.column(name).to_pylist() for name in names]
        keys = [key for key, _ in keyed]
        for values in zip(*columns):
            # (key, value) pairs without the empty tags: files with other tag columns compare right.
            self.series.add((plan.measurement, *((k, v) for k, v in zip(keys, values) if v is not None)))
        if len(self.series) > reports.SERIES_CAP:
            self.series_over_cap = True
            self.series = set()

    # ------------------------------------------------------------ the report

    def report(self, items: list[str]) -> InspectReport:
        for report in self.columns.values():
            if report.role is Role.FIELD and report.type is None and report._plan_key in self.encoder.inferred:
                report.type = self.encoder.inferred[report._plan_key].value
                report.type_inferred = True
                report.type_inferred_at = self.encoder.inferred_where[report._plan_key]
            if report.role in (Role.TAG, Role.MEASUREMENT, Role.FIELD_KEY) and not report.distinct_over_cap:
                report.distinct = len(report._values)
        for report in self.columns.values():  # after the loop above: the keys' column is done with its values
            if report.keys_from is not None:
                report.key = _keys_text(self.columns[report.keys_from])
        for report in self.columns.values():
            report._values = set()
        counts = self.counts
        series = None if self.series_over_cap else len(self.series)
        columns = list(self.columns.values())
        return InspectReport(
            inputs=items,
            measurement=", ".join(self.measurements) or None,
            columns=columns,
            rows_read=counts.rows_read,
            lines=counts.lines_written,
            rows_rejected=counts.rows_rejected,
            rejects_by_reason=dict(counts.rejects_by_reason.most_common()),
            fields_dropped=counts.fields_dropped,
            blank_lines=counts.blank_lines,
            series=series,
            series_over_cap=self.series_over_cap,
            warnings=counts.warnings + _cardinality_warnings(columns, counts.lines_written, series),
            sample=self.sample,
            duplicate_points=counts.duplicate_points,
            duplicates_unchecked=counts.duplicates_unchecked,
            unbalanced_quotes=counts.unbalanced_quotes,
            lines_swallowed=counts.lines_swallowed,
        )
