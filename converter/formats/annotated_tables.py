"""The tables of an annotated CSV: each section's annotations compiled into a layout, a mapping and the cell rewrites of its datatypes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

import pyarrow as pa
import pyarrow.compute as pc

from ..encode.row_keys import RowKeyedField
from ..errors import MappingError
from ..mapping import NO_TIME, FieldSpec, FieldType, MappingSpec, OtherColumns, Plan, TagSpec, TimeSpec, resolve
from . import annotated_types as types

COLUMN_ANNOTATIONS = {"#group": 1, "#datatype": 2, "#default": 4}  # pkg/csv2lp's bits


FLUX = {"measurement": "_measurement", "time": "_time", "field": "_field", "value": "_value"}
# Columns of every Flux result that are not data: the result's name, the table number and the
# query's time range (README: "result, table, _start, _stop ignored"). Left out without a word.
FLUX_BOOKKEEPING = frozenset({"result", "table", "_start", "_stop"})


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
