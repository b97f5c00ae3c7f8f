"""Annotated CSV input: the format of `influx write` and of Flux query results.

    #group,false,false,true,true,false,false,true,true,true
    #datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string
    #default,_result,,,,,,,,
    ,result,table,_start,_stop,_time,_value,_field,_measurement,host
    ,,0,2020-02-25T22:17:54Z,2020-02-25T22:22:54Z,2020-02-25T22:17:57Z,2.7,usage_user,cpu,h1

means `cpu,host=h1 usage_user=2.7 1582669077000000000`. The annotations (and the shorthand
header `name|datatype|default`) say which column is the measurement, a tag, a field of which
type, or the time; this module reads them the way InfluxData's converter does (pkg/csv2lp,
which `influx write` runs on CSV input; tests/test_annotated.py compares the two) and turns
each table of the file into a section for the ordinary machinery: a `Plan` and a `CsvSource`
over the section's rows. Arrow reads the rows and the encoder writes the lines, as for any
CSV; Python only reads the annotation and header lines.

A file is cut into sections where a line starts with '#' (an annotation or a comment): a
byte search over whole chunks, not a parse of rows. pkg/csv2lp's rules, kept here:
- a column annotation (#group, #datatype, #default) after data starts a new table: new
  columns, and the next line that is not an annotation is its header; #constant and
  #timezone add to the current table, and #timezone stays for the tables after it;
- the measurement is the column labelled `_measurement` or typed `measurement`, the time the
  last column labelled `_time` or typed `dateTime`/`time` (Flux's `_start`/`_stop` lose to
  `_time`); columns without a label or typed `ignored` are left out; tags are typed `tag` or
  grouped (`#group` true); with a `_field` column ("long" layout) each row is one field, its
  key in `_field` and its value in `_value`, and untyped columns are left out; without one,
  every other column is a field;
- a `#default` (or `name|type|default`) value fills the column's empty cells.
Where we differ on purpose (times follow --precision; a row without a time is rejected, not
stamped by the server; ...), tests/test_annotated.py says so next to the case.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

import pyarrow as pa
import pyarrow.compute as pc

from . import annotated_types as types
from ..errors import MappingError
from ..mapping import (
    NO_TIME,
    FieldSpec,
    FieldType,
    MappingSpec,
    OtherColumns,
    Plan,
    TagSpec,
    TimeSpec,
    resolve,
)
from ..read.quotes import Runaway, RunawayRows
from ..read.source import Block, CsvSource
from ..read.streams import PrefixedReader
from ..encode.row_keys import RowKeyedField


class InputFormat(str, Enum):
    """What the input is: found out from its first line, plain CSV, or annotated CSV."""

    AUTO = "auto"
    CSV = "csv"
    ANNOTATED = "annotated"


COLUMN_ANNOTATIONS = {"#group": 1, "#datatype": 2, "#default": 4}  # pkg/csv2lp's bits
TABLE_ANNOTATIONS = ("#constant", "#timezone", "#concat")
ANNOTATIONS = (*COLUMN_ANNOTATIONS, *TABLE_ANNOTATIONS)
# Datatypes a `name|datatype` header cell may name (`ignore...` counts too).
SHORTHAND_TYPES = frozenset({"measurement", "tag", "field", "time", "dateTime", "string", "double", "long",
                             "unsignedLong", "boolean", "duration", "base64Binary"})
FLUX = {"measurement": "_measurement", "time": "_time", "field": "_field", "value": "_value"}
# Columns of every Flux result that are not data: the result's name, the table number and the
# query's time range (README: "result, table, _start, _stop ignored"). Left out without a word.
FLUX_BOOKKEEPING = frozenset({"result", "table", "_start", "_stop"})
CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"


# ---------------------------------------------------------------- detection


def is_annotated(source: CsvSource, wanted: InputFormat) -> bool:
    """Whether `source` is read as annotated CSV: asked for, or (auto) its first record says so.

    Not with Telegraf's CSV options (skipped lines, header rows, ...): those describe a plain
    CSV file, and the annotations would be read from lines they have already moved.
    """
    if wanted is InputFormat.CSV:
        return False
    if not source.settings.plain:
        if wanted is InputFormat.ANNOTATED:
            raise MappingError(f"{source.name}: --format annotated does not combine with the header and line "
                               f"options of a Telegraf CSV config; annotated CSV says where its header is itself.")
        return False
    return wanted is InputFormat.ANNOTATED or looks_annotated(source.header)


def looks_annotated(header: Sequence[str]) -> bool:
    """An annotation (`#datatype ...`), a `sep=;` line, or a header cell `name|datatype`."""
    if not header:
        return False
    first = header[0].lstrip("\ufeff")
    if _annotation(first) is not None:
        return True
    if len(header) == 1 and first.startswith("sep=") and len(first) > 4:
        return True
    return any(_shorthand_type(cell) for cell in header)


def _annotation(cell: str) -> str | None:
    """The annotation a first cell starts (`#datatype` or `#datatype double`), else None."""
    lowered = cell.lower()
    for name in ANNOTATIONS:
        if lowered.startswith(name) and (len(cell) == len(name) or cell[len(name)] == " "):
            return name
    return None


def _shorthand_type(cell: str) -> bool:
    pipe = cell.find("|")
    if pipe <= 0:
        return False
    datatype = cell[pipe + 1:].split("|", 1)[0].split(":", 1)[0]
    return datatype in SHORTHAND_TYPES or datatype.startswith("ignore")


# ---------------------------------------------------------------- a table, as annotations describe it


class Part(str, Enum):
    """What a column is in a line; NONE: decided by its label and the table's layout."""

    NONE = ""
    MEASUREMENT = "measurement"
    TAG = "tag"
    FIELD = "field"
    TIME = "time"
    IGNORED = "ignored"


@dataclass
class Column:
    """One column: from the data (index >= 0) or a #constant (index -1)."""

    index: int
    label: str = ""
    datatype: str = ""
    format: str = ""
    part: Part = Part.NONE
    default: str = ""

    def set_datatype(self, text: str) -> None:
        """`type`, `type:format`, `type|default`, `type:format|default` (after an optional `#annotation `)."""
        text = _without_annotation_name(text)
        pipe = text.find("|")
        if pipe > 1 and self.default == "":
            self.default, text = text[pipe + 1:], text[:pipe]
        colon = text.find(":")
        if colon > 1:
            self.format, text = text[colon + 1:], text[:colon]
        if text == "tag":
            self.part = Part.TAG
        elif text.startswith("ignore"):
            self.part = Part.IGNORED
        elif text in ("dateTime", "time"):
            self.part, text = Part.TIME, "dateTime"
        elif text == "measurement":
            self.part = Part.MEASUREMENT
        elif text == "field":
            self.part, text = Part.FIELD, ""  # a field without a datatype
        self.datatype = text


def _without_annotation_name(value: str) -> str:
    """`#datatype double` -> `double`; `#datatype` -> `` (the first cell of an annotation row)."""
    if value.startswith("#"):
        space = value.find(" ")
        return value[space + 1:].lstrip(" ") if space > 0 else ""
    return value


@dataclass
class Table:
    columns: list[Column] = field(default_factory=list)
    constants: list[Column] = field(default_factory=list)
    annotated: int = 0  # bits of the column annotations read since the table began
    header_read: bool = False
    header_line: int = 0  # where the header is, for messages
    version: int = 0  # bumped on every change: the compiled section is reused until then

    def restart(self) -> None:
        self.columns, self.constants, self.annotated, self.header_read = [], [], 0, False

    def column_annotation(self, name: str, row: list[str]) -> None:
        if self.header_read:
            self.restart()
        bit = COLUMN_ANNOTATIONS[name]
        # pkg/csv2lp starts over on the first column annotation and on a repeated #group.
        if self.annotated == 0 or self.annotated & bit == 1:
            self.annotated = bit
            self.columns = [Column(i) for i in range(len(row))]
        else:
            self.annotated |= bit
        for column in self.columns:
            if column.index >= len(row):
                continue
            value = row[column.index]
            if name == "#group":
                if value.endswith("true") and column.part is Part.NONE:
                    column.part = Part.TAG
            elif name == "#datatype":
                column.set_datatype(value)
            else:
                column.default = _without_annotation_name(value)

    def header(self, row: list[str]) -> None:
        if self.annotated == 0:
            self.columns = [Column(i) for i in range(len(row))]
        for column in self.columns:
            if column.label == "" and column.index < len(row):
                column.label = row[column.index]
                pipe = column.label.find("|")
                if column.datatype == "" and pipe >= 0:
                    column.set_datatype(column.label[pipe + 1:])
                    column.label = column.label[:pipe]
        self.header_read = True

    def constant(self, row: list[str]) -> None:
        """`#constant,datatype,label,value`, or `#constant,measurement,value` / `#constant,dateTime,value`."""
        column = Column(-1)
        column.set_datatype(row[0])
        at = 0
        if column.datatype == "" and column.part is Part.NONE:
            at = 1
            if len(row) > 1:
                column.set_datatype(row[1])
        if len(row) > at + 1:
            column.label = row[at + 1]
        if len(row) > at + 2:
            column.default = row[at + 2]
        if column.part in (Part.MEASUREMENT, Part.TIME):
            if column.default == "" and column.label != "":
                column.default, column.label = column.label, f"#constant {column.datatype}"
            elif column.label == "":
                column.label = f"#constant {column.datatype}"
        self.constants.append(column)


# ---------------------------------------------------------------- a table -> plan and cell rewrites


@dataclass
class Layout:
    """Which column plays which part, by pkg/csv2lp's precedence."""

    measurement: Column | None = None
    time: Column | None = None
    field_key: Column | None = None
    field_value: Column | None = None
    tags: dict[str, Column] = field(default_factory=dict)
    fields: dict[str, Column] = field(default_factory=dict)  # by label; a repeated label: the last

    @classmethod
    def of(cls, table: Table) -> Layout:
        layout = cls()
        others_are_fields = not any(c.label == FLUX["field"] for c in table.columns)
        for column in table.columns + table.constants:
            if column.label == FLUX["measurement"] or column.part is Part.MEASUREMENT:
                layout.measurement = column
            elif column.label == FLUX["time"] or column.part is Part.TIME:
                layout.time = column
            elif column.label.strip() == "" or column.part is Part.IGNORED:
                continue
            elif column.label == FLUX["field"]:
                layout.field_key = column
            elif column.label == FLUX["value"]:
                layout.field_value = column
            elif column.part is Part.TAG:
                layout.tags[column.label] = column
            elif column.part is Part.FIELD or others_are_fields:
                layout.fields.pop(column.label, None)
                layout.fields[column.label] = column
        return layout

    @property
    def long(self) -> bool:
        return self.field_key is not None and self.field_value is not None


@dataclass
class Section:
    """One table compiled: the names Arrow and the plan see, and what is done to each block."""

    names: tuple[str, ...]  # the data columns, then the constant columns
    data_width: int
    plan: Plan
    fills: dict[int, bytes]  # column -> its #default, for empty cells
    rewrites: dict[int, types.Rewrite]
    constants: list[tuple[str, bytes]]  # appended columns: name, value (already rewritten)

    def shape(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Defaults filled, cells rewritten, constants appended; blank lines stay blank (all null),
        so that the pipeline counts them as blank lines, as it does in plain CSV."""
        n = batch.num_rows
        columns = list(batch.columns)
        blank = None
        if (self.fills or self.constants) and n and min((c.null_count for c in columns), default=0):
            blank = _all_null(columns)
        for index, default in self.fills.items():
            if columns[index].null_count:
                columns[index] = _unless_blank(pc.fill_null(columns[index], pa.scalar(default, pa.binary())), blank)
        for index, rewrite in self.rewrites.items():
            columns[index] = rewrite(columns[index])
        for _, value in self.constants:
            columns.append(_unless_blank(pa.repeat(pa.scalar(value, pa.binary()), n), blank))
        return pa.RecordBatch.from_arrays(columns, names=list(self.names))


def _all_null(columns: list[pa.Array]) -> pa.Array | None:
    blank = pc.is_null(columns[0])
    for column in columns[1:]:
        blank = pc.and_(blank, pc.is_null(column))
    return blank if pc.any(blank).as_py() else None


def _unless_blank(column: pa.Array, blank: pa.Array | None) -> pa.Array:
    return column if blank is None else pc.if_else(blank, types.BINARY_NULL, column)


def compile_table(table: Table, width: int, *, timezone: str, where: str, measurement: str | None) -> Section:
    """The section for a table whose rows have `width` cells."""
    layout = Layout.of(table)
    names = _column_names(table, width)
    fills: dict[int, bytes] = {}
    rewrites: dict[int, types.Rewrite] = {}
    constants: list[tuple[str, bytes]] = []

    def place(column: Column, rewrite: types.Rewrite | None = None) -> str | None:
        """The name of the column that holds `column`'s cells (a constant becomes a column)."""
        if 0 <= column.index < width:
            if column.default:
                fills[column.index] = column.default.encode()
            if rewrite is not None:
                rewrites[column.index] = rewrite
            return names[column.index]
        if column.default == "":
            return None  # a constant without a value (or a column the rows lack): nothing to add
        value = pa.array([column.default.encode()], pa.binary())
        if rewrite is not None:
            value = rewrite(value)
        name = _unique(f"#constant {column.label}".strip(), set(names) | {n for n, _ in constants})
        constants.append((name, value[0].as_py()))
        return name

    spec = MappingSpec(other_columns=OtherColumns.IGNORE, time=TimeSpec(column=NO_TIME))
    # The measurement.
    if layout.measurement is None:
        if measurement is None:
            raise MappingError(
                f"{where}: the table has no measurement: give a column the datatype measurement, name it "
                f"_measurement, add a line #constant,measurement,NAME, or give --measurement.")
        spec = replace(spec, measurement=measurement)
    elif layout.measurement.index < 0 or layout.measurement.index >= width:
        if layout.measurement.default == "":
            raise MappingError(f"{where}: the #constant measurement has no name.")
        spec = replace(spec, measurement=layout.measurement.default)
    else:
        spec = replace(spec, measurement_column=place(layout.measurement))
    # Tags, fields and the long layout's keyed field.
    tag_specs = []
    for label, column in sorted(layout.tags.items(), key=lambda item: item[0].encode()):
        name = place(column)
        if name is not None:
            tag_specs.append(TagSpec(name, key=label))
    field_specs = []
    field_columns = list(layout.fields.values())
    value_name = key_name = None
    if layout.long:
        assert layout.field_key is not None and layout.field_value is not None
        key_name = place(layout.field_key)
        value_name = place(layout.field_value, _rewrite_for(layout.field_value, where))
        if key_name is not None and value_name is not None:
            field_specs.append(FieldSpec(value_name, key=FLUX["value"], type=_field_type(layout.field_value, where)))
    for column in field_columns:
        name = place(column, _rewrite_for(column, where))
        if name is not None:
            field_specs.append(FieldSpec(name, key=column.label, type=_field_type(column, where)))
    _check_keys(layout, where)
    spec = replace(spec, tags=tuple(tag_specs), fields=tuple(field_specs))
    # The time.
    if layout.time is not None:
        fmt = types.time_format(layout.time.datatype, layout.time.format, layout.time.label, timezone)
        time_name = place(layout.time, fmt.rewrite)
        if time_name is not None:
            spec = replace(spec, time=TimeSpec(column=time_name, format=fmt.format, timezone=timezone))
    if not spec.fields:
        raise MappingError(f"{where}: the table has no field column (every line needs a field); "
                           f"columns: {', '.join(repr(c.label) for c in table.columns)}.")
    all_names = tuple(names) + tuple(name for name, _ in constants)
    plan = resolve(spec, all_names, source=where, default_measurement="")
    if value_name is not None and key_name is not None:
        plan = replace(plan, fields=tuple(
            _keyed(f, all_names.index(key_name), layout.field_key.label) if f.column == value_name else f  # type: ignore[union-attr]
            for f in plan.fields))
    plan = replace(plan, unwritten=_unwritten(table, layout, plan, width))
    return Section(all_names, width, plan, fills, rewrites, constants)


def _unwritten(table: Table, layout: Layout, plan: Plan, width: int) -> tuple[tuple[int, str], ...]:
    """The data columns the layout leaves out without being asked to, with the reason (Plan.unwritten)."""
    used = {t.index for t in plan.tags} | {f.index for f in plan.fields}
    used |= {f.key_index for f in plan.fields if isinstance(f, RowKeyedField)}
    used |= {i for i in (plan.measurement_index, plan.time.index if plan.time else None) if i is not None}
    labels = [c.label for c in table.columns]
    out = []
    for column in table.columns:
        if column.index >= width or column.index in used or column.part is Part.IGNORED \
                or column.label in FLUX_BOOKKEEPING:
            continue
        if column.label.strip() == "":
            why = "it has no name in the header (annotated CSV leaves unnamed columns out)"
        elif labels.count(column.label) > 1:
            why = f"another column has the label {column.label!r} too, and the last one of them is written"
        elif column.label == FLUX["measurement"] or column.part is Part.MEASUREMENT:
            why = "another column is the measurement (the last one labelled _measurement or typed measurement)"
        elif column.label == FLUX["time"] or column.part is Part.TIME:
            why = "another column is the time (the last one labelled _time or typed dateTime)"
        elif column.label in (FLUX["field"], FLUX["value"]):
            why = "a _field column and a _value column go together (each row's field key and value); this table has one of them only"
        elif layout.long:
            why = ("in a Flux result (a table with _field and _value) only group columns (#group true) and "
                   "columns typed tag become tags, and each row's field is _field=_value: InfluxData's converter "
                   "leaves the other columns out too. Mark it #group true to keep it as a tag, or read the file "
                   "with --format csv and a mapping")
        else:
            why = "its annotations make it neither a measurement, tag, field nor time"
        out.append((column.index, why))
    return tuple(out)


def _keyed(fld, key_index: int, key_column: str) -> RowKeyedField:
    return RowKeyedField(fld.column, fld.index, fld.key, fld.escaped_key, fld.type, key_index, key_column)


def _column_names(table: Table, width: int) -> list[str]:
    """Unique names for the data columns: the labels, told apart by position where needed."""
    labels = [table.columns[i].label if i < len(table.columns) else "" for i in range(width)]
    names: list[str] = []
    for i, label in enumerate(labels):
        clash = label == "" or labels.count(label) > 1
        names.append(f"{label} (column {i + 1})".lstrip() if clash else label)
    return names


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name} ({n})", n + 1
    return candidate


def _field_type(column: Column, where: str) -> FieldType:
    ftype = types.FIELD_TYPES.get(column.datatype)
    if ftype is not None:
        return ftype
    if column.datatype in types.UNSUPPORTED_FIELD_TYPES:
        raise MappingError(f"{where}: column {column.label!r} has datatype {column.datatype}, which csv2lp does "
                           f"not convert; make it a string, or ignored.")
    raise MappingError(f"{where}: column {column.label!r} has an unknown datatype {column.datatype!r}; use one of "
                       f"string, double, long, unsignedLong, boolean, dateTime, tag, measurement, ignored.")


def _rewrite_for(column: Column, where: str) -> types.Rewrite | None:
    ftype = _field_type(column, where)
    if ftype in (FieldType.FLOAT, FieldType.INTEGER, FieldType.UNSIGNED):
        return types.number_rewrite(ftype, types.NumberFormat.parse(column.format))
    if ftype is FieldType.BOOLEAN:
        return types.boolean_rewrite(column.format, column.label)
    return None


def _check_keys(layout: Layout, where: str) -> None:
    for label in layout.tags:
        if label in layout.fields:
            raise MappingError(f"{where}: {label!r} is both a tag and a field column; line protocol keys "
                               f"must differ; mark one of them ignored or rename it.")
    for label in (*layout.tags, *layout.fields):
        if label == "time":
            raise MappingError(f"{where}: a tag or field named 'time' is refused by InfluxDB; rename column 'time' "
                               f"or give it the datatype dateTime.")


# ---------------------------------------------------------------- reading a file: annotation lines and data runs


class _Lines:
    """The input's bytes, taken line by line (annotation and header lines) or run by run (rows)."""

    def __init__(self, raw) -> None:
        self._raw = raw
        self._buffer = b""
        self._eof = False
        self.line = 1  # number of the next line
        if self._fill_to(3) and self._buffer.startswith(_BOM):
            self._buffer = self._buffer[3:]

    def _fill_to(self, size: int) -> bool:
        while len(self._buffer) < size and not self._eof:
            chunk = self._raw.read(CHUNK)
            if not chunk:
                self._eof = True
            else:
                self._buffer += chunk
        return len(self._buffer) >= size

    def at_end(self) -> bool:
        return not self._fill_to(1)

    def next_byte(self) -> bytes:
        return self._buffer[:1] if self._fill_to(1) else b""

    def record(self) -> bytes:
        """One CSV record's lines: a quoted cell may span lines (an odd count of quotes goes on)."""
        text = self._line()
        while text.count(b'"') % 2 and not self.at_end():
            text += self._line()
        return text

    def _line(self) -> bytes:
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end >= 0:
                line, self._buffer = self._buffer[: end + 1], self._buffer[end + 1:]
                self.line += 1
                return line
            start = len(self._buffer)
            if not self._fill_to(start + 1):
                line, self._buffer = self._buffer, b""
                return line

    def run(self) -> _Run:
        return _Run(self)


class _Run(io.RawIOBase):
    """The rows up to the next line that starts with '#' (or the end), as a stream for Arrow."""

    def __init__(self, lines: _Lines) -> None:
        self._lines = lines
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        lines = self._lines
        while not self._done:
            data = lines._buffer
            cut = data.find(b"\n#")
            if cut >= 0:
                return self._serve(buffer, cut + 1, last=True)
            if lines._eof:
                return self._serve(buffer, len(data), last=True)
            # Keep a final line break back: the '#' that may follow it is in the next chunk.
            keep = 1 if data.endswith(b"\n") else 0
            if len(data) - keep > 0:
                return self._serve(buffer, len(data) - keep, last=False)
            lines._fill_to(len(data) + 1)
        return 0

    def _serve(self, buffer, available: int, *, last: bool) -> int:
        n = min(len(buffer), available)
        lines = self._lines
        taken = lines._buffer[:n]
        buffer[:n] = taken
        lines._buffer = lines._buffer[n:]
        lines.line += taken.count(b"\n")
        if last and n == available:
            self._done = True
        return n

    def drain(self) -> None:
        """Skip what the reader left (a run whose reading stopped early)."""
        sink = bytearray(CHUNK)
        while self.readinto(sink):
            pass


class _Progress:
    """A section counts progress in the whole input's bytes (and closing it closes nothing)."""

    def __init__(self, source: CsvSource) -> None:
        self._source = source

    @property
    def count(self) -> int:
        return self._source.bytes_read

    def close(self) -> None:
        pass


class SectionSource(CsvSource):
    """One table's rows: a CsvSource over them, with the table's cells shaped for its plan and
    line numbers counted in the whole file."""

    def __init__(self, outer: CsvSource, run: _Run, section: Section, *, first_line: int, delimiter: str,
                 block_size: int) -> None:
        # Arrow gets a header line of our unique names, then the rows as they are in the file.
        header = io.StringIO()
        csv.writer(header, delimiter=delimiter, lineterminator="\n").writerow(section.names[: section.data_width])
        stream = PrefixedReader(header.getvalue().encode("utf-8"), run)
        super().__init__(outer.name, stream, _Progress(outer), delimiter=delimiter,  # type: ignore[arg-type]
                         block_size=block_size, decompressed=outer._decompressed)
        self.header = section.names
        self._section = section
        self._shift = first_line - 2  # Arrow counts our header as line 1, the first row as line 2
        self._line_offset = self._shift  # for the line numbers in messages

    def blocks(self) -> Iterator[Block]:
        shift = self._shift
        for block in super().blocks():
            yield Block(block.source, self._section.shape(block.cells), block.first_line + shift,
                        [replace(row, line=row.line + shift, runaway=_shifted(row.runaway, shift))
                         for row in block.invalid],
                        _row_lines=block.row_lines() + shift, runaway=_shifted_rows(block.runaway, shift),
                        notes=block.notes)


def _shifted(runaway: Runaway | None, shift: int) -> Runaway | None:
    return None if runaway is None else replace(runaway, opened_at=runaway.opened_at + shift,
                                                runs_to=runaway.runs_to + shift)


def _shifted_rows(runaway: RunawayRows | None, shift: int) -> RunawayRows | None:
    return None if runaway is None else RunawayRows(runaway.rows, [_shifted(r, shift) for r in runaway.spans])


def _original_bytes(source: CsvSource):
    """The input's bytes from the first on, exactly as in the file (decompressed).

    Read from under the reader's UTF-8 guard, so that cells keep their bytes (invalid UTF-8 is
    then rejected per row, as in plain CSV).
    """
    return source.raw_stream


def sections(source: CsvSource, *, mapping: MappingSpec, delimiter: str,
             block_size: int) -> Iterator[tuple[SectionSource, Plan]]:
    """Each table section of an annotated input, in file order: its source and its plan.

    Read lazily: a section's rows are read when its source's blocks are, and the next
    section's annotations after that. The mapping flags do not apply (the file carries its
    own mapping) except --measurement, used for tables that name no measurement.
    """
    fallback_measurement = _check_mapping(mapping, source.name)
    lines = _Lines(_original_bytes(source))
    table = Table()
    timezone = "UTC"
    compiled: tuple[int, int, Section] | None = None  # (table version, width, section)
    width = 0
    first = True
    while not lines.at_end():
        if lines.next_byte() == b"#" or first or not table.header_read:
            start = lines.line
            text = lines.record()
            row = _parse_record(text, delimiter, f"{source.name}:{start}")
            if first:
                first = False
                if len(row) == 1 and row[0].startswith("sep=") and len(row[0]) > 4:
                    delimiter = row[0][4]
                    continue
            if not row or (len(row) == 1 and row[0] == ""):
                continue  # blank lines are not records
            where = f"{source.name}:{start}"
            if row[0].startswith("#"):
                name = _annotation(row[0])
                if name in COLUMN_ANNOTATIONS:
                    table.column_annotation(name, row)
                elif name == "#constant":
                    table.constant(row)
                elif name == "#timezone":
                    value = _without_annotation_name(row[0]) or (row[1] if len(row) > 1 else "")
                    try:
                        timezone = types.parse_timezone(value)
                    except MappingError as exc:
                        raise MappingError(f"{where}: {exc}") from None
                elif name == "#concat":
                    raise MappingError(f"{where}: #concat is not supported; compute the column before converting.")
                # Any other line that starts with '#' is a comment.
                table.version += 1
                continue
            if not table.header_read:
                table.header(row)
                table.header_line = start
                width = len(row)
                table.version += 1
                continue
            raise AssertionError("unreachable")  # pragma: no cover
        # Rows, up to the next line that starts with '#'.
        first_line = lines.line
        where = f"{source.name}:{table.header_line}"
        if compiled is None or compiled[:2] != (table.version, width):
            compiled = (table.version, width, compile_table(table, width, timezone=timezone, where=where,
                                                            measurement=fallback_measurement))
        run = lines.run()
        yield SectionSource(source, run, compiled[2], first_line=first_line, delimiter=delimiter,
                            block_size=block_size), compiled[2].plan
        run.drain()


def _parse_record(text: bytes, delimiter: str, where: str) -> list[str]:
    decoded = text.decode("utf-8", errors="replace").rstrip("\r\n")
    try:
        return next(csv.reader(io.StringIO(decoded, newline=""), delimiter=delimiter), [])
    except csv.Error as exc:
        raise MappingError(f"{where}: cannot read the annotation or header line {decoded[:80]!r}: {exc}.") from None


def _check_mapping(mapping: MappingSpec, name: str) -> str | None:
    """Annotated CSV carries its mapping; of the mapping flags only --measurement applies."""
    if replace(mapping, measurement=None) != MappingSpec():
        raise MappingError(f"{name}: annotated CSV carries its own mapping (#datatype, name|type headers); "
                           f"--preset, --config and the tag/field/time flags do not apply to it. Give only "
                           f"--measurement (for tables without one), or --format csv to read it as plain CSV.")
    return mapping.measurement


def check(source: CsvSource, *, mapping: MappingSpec, delimiter: str, block_size: int) -> Plan | None:
    """The first table's plan (its annotations and header read, no row): checks a file up front."""
    for _, plan in sections(source, mapping=mapping, delimiter=delimiter, block_size=block_size):
        return plan
    return None
