"""One batch of raw cells in, one Arrow array of line-protocol lines out; no Python per row.

How a line is assembled (Movebank preset, one row; `·` marks where arrays are joined):

    cells:   event-id=170635808  timestamp=2011-02-11 17:30:00.000  location-lat=""  sensor-type=gps ...

    series   = "movebank" · ",individual=F1" · ",sensor=gps" · ",study=Martes\\ pennanti\\ ..." · ...
    fieldset = ",event_id=170635808i" · "" (lat is empty: its piece is null -> "") · ",visible=true" · ...
    line     = series · " " · fieldset[1:] · " " · "1297445400000" · "\\n"

Every piece is a whole Arrow array built for all rows at once: a tag piece is
`,<escaped key>=<escaped value>` and stays null where the cell is empty, a field piece is
`,<escaped key>=<formatted value>` and stays null where the value is empty, NaN or ±Inf.
Joining with nulls replaced by "" leaves exactly the present pieces, each with its leading
comma; the field set then drops its first character. (Arrow's `null_handling="skip"` would
save that slice, but pyarrow 26 drops rows whose pieces are all null from its output, which
would shift every later line: see tests/test_encode.py::test_regression_join_skip_drops_rows.)
Tag values are escaped once per distinct value through a dictionary, names once per run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from . import cells, escape, geo, rowerrors
from .mapping import FieldType, Plan, Precision, ResolvedField
from .rowerrors import RowErrors
from .timestamps import parse_times

NULL_TEXT = pa.scalar(None, pa.string())
S2_TAG_KEY = "s2_cell_id"

SUFFIX_BY_TYPE = {FieldType.INTEGER: "i", FieldType.UNSIGNED: "u"}


@dataclass(frozen=True)
class EncodeOptions:
    precision: Precision = Precision.NS
    replace_control_chars: bool = False
    s2_level: int | None = None


@dataclass
class Encoded:
    lines: pa.Array  # one string per good row, each ending in "\n"
    errors: RowErrors
    fields_dropped: int  # NaN / ±Inf values left out


@dataclass
class Encoder:
    """Encodes batches; remembers the type chosen for each AUTO column for the whole run."""

    options: EncodeOptions
    inferred: dict[str, FieldType] = field(default_factory=dict)
    inferred_where: dict[str, str] = field(default_factory=dict)

    def encode(self, plan: Plan, batch: pa.RecordBatch, *, where: str) -> Encoded:
        errors = RowErrors(batch.num_rows)
        non_finite: list[pa.Array] = []
        tag_pieces: list[tuple[str, pa.Array]] = []
        field_pieces: list[pa.Array] = []
        coordinates: dict[str, pa.Array] = {}

        series_head = self._measurement(plan, batch, errors)
        for tag in plan.tags:
            piece = self._tag_piece(tag.escaped_key, tag.column, "tag", batch.column(tag.index), errors)
            if piece is not None:
                tag_pieces.append((tag.key, piece))
        for fld in plan.fields:
            raw = batch.column(fld.index)
            if raw.null_count == len(raw):
                continue  # nothing to say for this column in this batch
            ftype = self._type_of(fld, raw, where)
            piece, values, dropped_here = self._field_piece(fld, ftype, raw, errors)
            if dropped_here is not None:
                non_finite.append(dropped_here)
            field_pieces.append(piece)
            if fld.key in ("lat", "lon") and ftype is FieldType.FLOAT:
                coordinates[fld.key] = values
        if self.options.s2_level is not None:
            tag_pieces.append((S2_TAG_KEY, self._s2_piece(coordinates, batch.num_rows)))
        tag_pieces.sort(key=lambda kv: kv[0].encode())

        series = _join([series_head, *(piece for _, piece in tag_pieces)])
        fieldset = _join(field_pieces) if field_pieces else pa.array([""] * batch.num_rows, pa.string())
        errors.add(pc.equal(fieldset, ""), rowerrors.NO_FIELD)
        fieldset = pc.utf8_slice_codeunits(fieldset, 1)

        parts: list[pa.Array | pa.Scalar] = [series, pa.scalar(" "), fieldset]
        if plan.time is not None:
            parsed = parse_times(batch.column(plan.time.index), fmt=plan.time.format,
                                 timezone=plan.time.timezone, precision=self.options.precision)
            detail = plan.time.timezone if "local" in "".join(k for k, _ in parsed.problems) else plan.time.format
            for kind, mask in parsed.problems:
                errors.add(mask, rowerrors.time_problem(kind, plan.time.column, detail), batch.column(plan.time.index))
            parts += [pa.scalar(" "), parsed.values.cast(pa.string())]
        parts.append(pa.scalar("\n"))
        lines = pc.binary_join_element_wise(*parts, "", null_handling="replace", null_replacement="")
        if errors.mask is not None:
            lines = lines.filter(pc.invert(errors.mask))
        return Encoded(lines, errors, _count_in_written_rows(non_finite, errors))

    # ------------------------------------------------------------ measurement and tags

    def _measurement(self, plan: Plan, batch: pa.RecordBatch, errors: RowErrors) -> pa.Array | pa.Scalar:
        if plan.measurement is not None:
            return pa.scalar(plan.measurement)
        assert plan.measurement_index is not None
        column = plan.header[plan.measurement_index]
        raw = batch.column(plan.measurement_index)
        errors.add(pc.is_null(raw), rowerrors.empty_measurement(column), raw)
        distinct = raw.dictionary_encode()
        text = self._clean_names(distinct, column, "measurement", raw, errors, escape.AMBIGUOUS_BACKSLASH_IN_MEASUREMENT)
        _add_by_dictionary(errors, distinct, pc.starts_with(text, "#"), rowerrors.comment_measurement(column), raw)
        return escape.measurement_values(text).take(distinct.indices)

    def _tag_piece(self, escaped_key: str, column: str, role: str, raw: pa.Array, errors: RowErrors) -> pa.Array | None:
        if raw.null_count == len(raw):
            return None  # empty tags are left out: nothing to join
        # Tags repeat a handful of values: check and escape each distinct value once.
        distinct = raw.dictionary_encode()
        text = self._clean_names(distinct, column, role, raw, errors, escape.AMBIGUOUS_BACKSLASH_IN_KEY)
        pieces = pc.binary_join_element_wise("," + escaped_key + "=", escape.tag_values(text), "")
        return pieces.take(distinct.indices)

    def _clean_names(self, distinct: pa.DictionaryArray, column: str, role: str, raw: pa.Array,
                     errors: RowErrors, ambiguous: str) -> pa.Array:
        """The dictionary of a name-like column (tag, measurement) as text, with its bad values rejected."""
        text = cells.to_text(distinct.dictionary)
        _add_by_dictionary(errors, distinct, text.bad, rowerrors.invalid_utf8(column), raw)
        values = text.values
        control = escape.has_match(values, escape.CONTROL_CHARS)
        if cells.any_true(control):
            if self.options.replace_control_chars:
                values = escape.replace_matches(values, escape.CONTROL_CHARS)
            else:
                _add_by_dictionary(errors, distinct, control, rowerrors.control_character(role, column), raw)
        _add_by_dictionary(errors, distinct, escape.has_match(values, ambiguous),
                           rowerrors.ambiguous_backslash(role, column), raw)
        return values

    def _s2_piece(self, coordinates: dict[str, pa.Array], length: int) -> pa.Array:
        if "lat" not in coordinates or "lon" not in coordinates:
            return pa.nulls(length, pa.string())  # no coordinates in this batch: no cell
        tokens = geo.s2_cell_tokens(coordinates["lat"], coordinates["lon"], self.options.s2_level)
        return pc.binary_join_element_wise("," + S2_TAG_KEY + "=", tokens.cast(pa.string()), "")

    # ------------------------------------------------------------ fields

    def _type_of(self, fld: ResolvedField, raw: pa.Array, where: str) -> FieldType:
        """A declared type, or the type an AUTO column got from its first non-empty batch."""
        if fld.type is not FieldType.AUTO:
            return fld.type
        known = self.inferred.get(fld.key)
        if known is None:
            if cells.looks_like(raw, "float"):
                known = FieldType.FLOAT
            elif cells.looks_like(raw, "boolean"):
                known = FieldType.BOOLEAN
            else:
                known = FieldType.STRING
            self.inferred[fld.key] = known
            self.inferred_where[fld.key] = where
        return known

    def _field_piece(self, fld: ResolvedField, ftype: FieldType, raw: pa.Array,
                     errors: RowErrors) -> tuple[pa.Array, pa.Array, pa.Array | None]:
        """The field's pieces, its typed values, and the mask of NaN/±Inf values left out (if any)."""
        prefix = "," + fld.escaped_key + "="
        dropped = None
        if ftype is FieldType.STRING:
            text = cells.to_text(raw)
            errors.add(text.bad, rowerrors.invalid_utf8(fld.column), raw)
            values = text.values
            breaks = escape.has_match(values, escape.LINE_BREAKS)
            if cells.any_true(breaks):
                if self.options.replace_control_chars:
                    values = escape.replace_matches(values, escape.LINE_BREAKS)
                else:
                    errors.add(breaks, rowerrors.line_break(fld.column), raw)
            piece = pc.binary_join_element_wise(prefix + '"', escape.string_field_values(values), '"', "")
            return piece, values, None
        if ftype is FieldType.BOOLEAN:
            converted = cells.to_boolean(raw)
            formatted = pc.if_else(converted.values, "true", "false")
        else:
            converter = {FieldType.FLOAT: cells.to_float, FieldType.INTEGER: cells.to_integer,
                         FieldType.UNSIGNED: cells.to_unsigned}[ftype]
            converted = converter(raw)
            values = converted.values
            if ftype is FieldType.FLOAT:
                # NaN and ±Inf do not exist in line protocol: leave the field out and count it.
                non_finite = pc.fill_null(pc.invert(pc.is_finite(values)), False)
                if cells.any_true(non_finite):
                    dropped = non_finite
                    values = pc.if_else(non_finite, pa.scalar(None, pa.float64()), values)
                    converted = cells.Converted(values, converted.bad)
            formatted = values.cast(pa.string())
        errors.add(converted.bad, rowerrors.invalid_value(ftype.value, fld.column), raw)
        suffix = SUFFIX_BY_TYPE.get(ftype, "")
        piece = pc.binary_join_element_wise(prefix, formatted, suffix, "")
        return piece, converted.values, dropped


def _count_in_written_rows(masks: list[pa.Array], errors: RowErrors) -> int:
    """NaN/±Inf values count as dropped only in rows that became lines."""
    total = 0
    for mask in masks:
        if errors.mask is not None:
            mask = pc.and_(mask, pc.invert(errors.mask))
        total += int(pc.sum(mask).as_py() or 0)
    return total


def _join(pieces: list) -> pa.Array:
    return pc.binary_join_element_wise(*pieces, "", null_handling="replace", null_replacement="")


def _add_by_dictionary(errors: RowErrors, distinct: pa.DictionaryArray, bad_values: pa.Array | None,
                       reason: rowerrors.Reason, raw: pa.Array) -> None:
    """Reject the rows whose dictionary value is bad (a mask over the dictionary)."""
    if cells.any_true(bad_values):
        errors.add(pc.fill_null(bad_values.take(distinct.indices), False), reason, raw)
