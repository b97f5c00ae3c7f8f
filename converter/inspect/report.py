"""`csv2lp inspect`: what convert would do with a file, before converting it.

It runs the real machinery (reader, mapping plan, Encoder) over the whole input and
writes nothing, so every number is what convert would produce: the role of each column,
the line-protocol type (an AUTO column gets the type the Encoder infers on this file),
the share of empty cells, rows that would be rejected and values dropped per column, and
for tags the number of distinct values and the number of series. A tag that takes a new
value on most rows (an event id, a timestamp) makes a new series per row, and InfluxDB's
index grows with every series: that is the mistake this command exists to catch.

Distinct values and series are counted exactly up to a cap, then reported as "more than
CAP", so memory stays bounded however large the input. They are counted over the rows
convert would write (rejected rows make no series); empty shares over every row read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ..books.summary import reason_lines

DISTINCT_CAP = 100_000  # per tag column: distinct values kept to count them
SERIES_CAP = 100_000  # distinct (measurement, tag set) combinations kept to count them
# A tag is suspicious when it takes a new value on more than this share of the rows,
# once there are enough rows for the share to mean something.
DISTINCT_SHARE_WARNING = 0.10
MIN_ROWS_FOR_SHARE_WARNING = 1_000
SERIES_WARNING = 100_000


class Role(str, Enum):
    MEASUREMENT = "measurement"
    TAG = "tag"
    FIELD = "field"
    FIELD_KEY = "field key"  # each row's field key (Flux results' _field): row_keys.py
    TIME = "time"
    IGNORED = "ignored"


KEYS_SHOWN = 5  # a field whose key comes from each row shows this many of its keys


@dataclass
class ColumnReport:
    """One CSV column: how convert maps it, and what the data in it looks like."""

    column: str
    role: Role
    key: str | None = None  # tag or field key
    type: str | None = None  # fields: line-protocol type; time: its format
    type_inferred: bool = False  # True when AUTO inference chose `type`
    type_inferred_at: str | None = None  # file:line of the block the type was inferred from
    ignored_because: str | None = None
    rows: int = 0  # rows of the files that have this column
    empty: int = 0
    distinct: int | None = None  # tags and the measurement column; None past the cap
    distinct_over_cap: bool = False
    rejected: int = 0  # rows rejected for a reason that names this column (first reason per row)
    dropped: int = 0  # NaN / ±Inf values left out of their lines
    keys_from: str | None = None  # a field whose key comes from each row: the column of its keys
    # Working set for `distinct`; emptied once the cap is passed.
    _values: set = field(default_factory=set, repr=False)
    _plan_key: str | None = field(default=None, repr=False)  # a field's key in the plan (the encoder's inference)

    @property
    def empty_share(self) -> float:
        return self.empty / self.rows if self.rows else 0.0

    def to_dict(self) -> dict:
        return {
            "column": self.column,
            "role": self.role.value,
            "key": self.key,
            "type": self.type,
            "type_inferred": self.type_inferred,
            "type_inferred_at": self.type_inferred_at,
            "ignored_because": self.ignored_because,
            "rows": self.rows,
            "empty": self.empty,
            "empty_share": round(self.empty_share, 4),
            "distinct": self.distinct,
            "distinct_over_cap": self.distinct_over_cap,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "keys_from": self.keys_from,
        }


@dataclass
class InspectReport:
    inputs: list[str]
    measurement: str | None  # the constant measurement(s) (escaped), None when it comes from a column
    columns: list[ColumnReport]
    rows_read: int
    lines: int  # lines convert would write
    rows_rejected: int
    rejects_by_reason: dict[str, int]
    fields_dropped: int
    blank_lines: int
    series: int | None  # None past the cap
    series_over_cap: bool
    warnings: list[str]
    sample: list[str]  # the first output lines, without their "\n"
    duplicate_points: int = 0  # lines whose series and time repeat an earlier line's
    duplicates_unchecked: int = 0
    unbalanced_quotes: int = 0
    lines_swallowed: int = 0

    def column(self, name: str) -> ColumnReport:
        return next(c for c in self.columns if c.column == name)

    def to_dict(self) -> dict:
        return {
            "inputs": self.inputs,
            "measurement": self.measurement,
            "rows_read": self.rows_read,
            "lines": self.lines,
            "rows_rejected": self.rows_rejected,
            "rejects_by_reason": self.rejects_by_reason,
            "fields_dropped": self.fields_dropped,
            "blank_lines": self.blank_lines,
            "series": self.series,
            "series_over_cap": self.series_over_cap,
            "duplicate_points": self.duplicate_points,
            "duplicates_unchecked": self.duplicates_unchecked,
            "unbalanced_quotes": self.unbalanced_quotes,
            "lines_swallowed": self.lines_swallowed,
            "columns": [c.to_dict() for c in self.columns],
            "warnings": self.warnings,
            "sample": self.sample,
        }


def _keys_text(keys: ColumnReport) -> str:
    """The field keys a row-keyed field takes (the distinct values of its keys' column)."""
    if keys.distinct_over_cap:
        return f"(from {keys.column}: more than {DISTINCT_CAP:,} keys)"
    shown = sorted(str(v.decode() if isinstance(v, bytes) else v) for v in keys._values)
    more = f", ... ({len(shown):,} keys)" if len(shown) > KEYS_SHOWN else ""
    return ", ".join(shown[:KEYS_SHOWN]) + more


def _cardinality_warnings(columns: list[ColumnReport], lines: int, series: int | None) -> list[str]:
    warnings = []
    for c in columns:
        if c.role not in (Role.TAG, Role.MEASUREMENT):
            continue
        many = c.distinct_over_cap or (
            lines >= MIN_ROWS_FOR_SHARE_WARNING and (c.distinct or 0) > DISTINCT_SHARE_WARNING * lines)
        if not many:
            continue
        count = f"more than {DISTINCT_CAP:,}" if c.distinct_over_cap else f"{c.distinct:,}"
        share = "" if c.distinct_over_cap else f" ({(c.distinct or 0) / lines:.0%} of them)"
        if c.role is Role.TAG:
            warnings.append(
                f"tag column {c.column!r} has {count} distinct values in {lines:,} lines{share}: each new value "
                f"starts a new series, which explodes InfluxDB's series cardinality. Make it a field: "
                f"--field {c.column} instead of --tag {c.column} (or move it from [tags] to [fields] in the mapping file)."
            )
        else:
            warnings.append(
                f"measurement column {c.column!r} has {count} distinct values in {lines:,} lines{share}: every "
                f"value is a measurement of its own. Use --measurement NAME and keep the column as a tag or field."
            )
    if series is None or series > SERIES_WARNING:
        count = f"more than {SERIES_CAP:,}" if series is None else f"{series:,}"
        tags = sorted((c for c in columns if c.role is Role.TAG),
                      key=lambda c: (not c.distinct_over_cap, -(c.distinct or 0)))
        worst = f" The tag with the most values is {tags[0].column!r}; make it a field (--field {tags[0].column})." if tags else ""
        warnings.append(f"the lines form {count} series (measurement + tag set): that many series slow "
                        f"InfluxDB down and use memory per series.{worst}")
    return warnings


# ---------------------------------------------------------------- text


def _percent(share: float) -> str:
    return f"{share:.1%}"


def _distinct_text(c: ColumnReport) -> str:
    if c.distinct_over_cap:
        return f">{DISTINCT_CAP:,}"
    return "" if c.distinct is None else f"{c.distinct:,}"


def _notes(c: ColumnReport, single_input: str | None) -> str:
    notes = []
    if c.role is Role.IGNORED and c.ignored_because:
        notes.append(c.ignored_because)
    if c.keys_from is not None:
        notes.append(f"each line's field key is its row's {c.keys_from}")
    if c.type_inferred:
        where = c.type_inferred_at or ""
        if single_input is not None and where.startswith(single_input + ":"):
            where = "line " + where[len(single_input) + 1:]  # the file is named at the top already
        notes.append(f"type inferred from {where}")
    if c.role is Role.FIELD and c.rows and c.empty == c.rows:
        notes.append("always empty: never written")
    if c.rejected:
        notes.append(f"{c.rejected:,} row{'s' if c.rejected != 1 else ''} rejected")
    if c.dropped:
        notes.append(f"{c.dropped:,} NaN/Inf dropped")
    return "; ".join(notes)


def _type_text(c: ColumnReport) -> str:
    if c.role is Role.FIELD:
        return c.type or "auto (no value)"
    if c.role is Role.TIME:
        return c.type or ""
    # tag values and keys are strings in line protocol
    return "string" if c.role in (Role.TAG, Role.MEASUREMENT, Role.FIELD_KEY) else ""


def render(report: InspectReport) -> str:
    """The report as plain text: a summary, a column table aligned with spaces, warnings, sample lines."""
    out = [f"input: {', '.join(report.inputs)}"]
    rows = f"rows: {report.rows_read:,} read, {report.lines:,} would be written, {report.rows_rejected:,} rejected"
    if report.blank_lines:
        rows += f" ({report.blank_lines:,} blank lines skipped)"
    out.append(rows)
    out += reason_lines(report.rejects_by_reason)
    if report.unbalanced_quotes:
        out.append(f"lines read into rejected rows by unbalanced quotes: {report.lines_swallowed:,} "
                   f"({report.unbalanced_quotes:,} row{'' if report.unbalanced_quotes == 1 else 's'})")
    if report.fields_dropped:
        out.append(f"field values dropped (NaN/Inf): {report.fields_dropped:,}")
    out.append(f"measurement: {report.measurement if report.measurement is not None else '(from a column)'}")
    series = f"more than {SERIES_CAP:,}" if report.series_over_cap else f"{report.series:,}"
    out.append(f"series (measurement + tag set): {series}")
    duplicates = f"duplicate points (same series and time as an earlier line; InfluxDB keeps the last): {report.duplicate_points:,}"
    if report.duplicates_unchecked:
        duplicates += f" ({report.duplicates_unchecked:,} rows too far out of time order to check)"
    out.append(duplicates)
    out.append("")

    single_input = report.inputs[0] if len(report.inputs) == 1 else None
    header = ("COLUMN", "ROLE", "KEY", "TYPE", "EMPTY", "DISTINCT", "NOTES")
    table = [header] + [
        (c.column, c.role.value, c.key or "", _type_text(c), _percent(c.empty_share), _distinct_text(c), _notes(c, single_input))
        for c in report.columns
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    right = {4, 5}  # numbers
    for row in table:
        cells_ = [row[i].rjust(widths[i]) if i in right else row[i].ljust(widths[i]) for i in range(len(header))]
        out.append("  ".join(cells_).rstrip())

    if report.warnings:
        out.append("")
        out += [f"warning: {w}" for w in report.warnings]
    if report.sample:
        out.append("")
        out.append(f"first {len(report.sample)} line(s):")
        out += report.sample
    return "\n".join(out)
