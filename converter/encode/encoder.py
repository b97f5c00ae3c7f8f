"""One batch of raw cells in, one Arrow array of line-protocol lines out; no Python per row.

How a line is assembled (Movebank preset; rows 1 and 2 of a batch; `·` separates join arguments):

    row 1 cells: individual=F1 sensor=gps ... event-id=170635808 location-lat=""       visible=true
    row 2 cells: individual=F2 sensor=gps ... event-id=170635809 location-lat=42.79    visible=true

    series   row 1: "movebank,individual=F1,sensor=gps,..."     (built once per distinct tag set)
    fields   row 1:  null · null     · "event_id=" · "170635808" · "i" · ",visible=" · "true"
             row 2: "lat=" · "42.79" · ",event_id=" · "170635809" · "i" · ",visible=" · "true"
    line     = series · " " · fields... · " " · "1297445400000" · "\n"   (nulls written as "")

Each argument is a whole Arrow array for all rows of the batch. A field contributes its
prefix, formatted value and suffix, all null where the value is empty, NaN or ±Inf; its
prefix carries a comma only in rows where an earlier field is present (a running OR over
validity masks), so one final join writes every line without a comma to cut. Tag values
are checked and escaped once per distinct value, and the series string once per distinct
combination of tags. Names were escaped once per run, when the mapping was resolved.
(Arrow's `null_handling="skip"` would seem to do the comma work, but pyarrow 26 drops from
its output the rows whose inputs are all null, shifting every later line:
tests/test_encode.py::test_regression_join_skip_drops_rows.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..books import rowerrors
from ..books.rowerrors import RowErrors
from ..mapping import FieldType, Plan, Precision, ResolvedField, names
from . import cells, escape, geo
from .assemble import (FieldText, _add_by_dictionary, _count_in_written_rows, _field_arguments, _first_changed,
                       _longer_than, _merge_constants, _over_key_limit, _series, _with_field_keys)
from .number_text import float_changes, number_text
from .row_keys import RowKeyedField
from .timestamps import OUT_OF_RANGE, parse_times, range_text

NULL_TEXT = pa.scalar(None, pa.string())
_RESERVED_FIELD_KEYS = pa.array(list(names.RESERVED_FIELD_KEYS), pa.string())
S2_TAG_KEY = "s2_cell_id"

SUFFIX_BY_TYPE = {FieldType.INTEGER: "i", FieldType.UNSIGNED: "u"}
NAMES_MEMO_MAX_VALUES = 64  # larger dictionaries (a tag with a value per row) are checked every time
NAMES_MEMO_MAX_ENTRIES = 4096


# InfluxDB documents 64 KB as the length limit of a string field (docs-v2, line protocol reference:
# "String: Plain text string. Length limit 64KB"). 1.6.7 and 2.8.0 store a 1 MB string; the option
# is there for servers and tools that hold to the documented limit.
DEFAULT_MAX_STRING_BYTES = 64 * 1024


@dataclass(frozen=True)
class EncodeOptions:
    precision: Precision = Precision.NS
    replace_control_chars: bool = False
    s2_level: int | None = None
    max_string_bytes: int | None = DEFAULT_MAX_STRING_BYTES  # None: no limit


@dataclass
class Encoded:
    lines: pa.Array  # one string per good row, each ending in "\n"
    errors: RowErrors
    fields_dropped: int  # NaN / ±Inf values left out
    # For the duplicate check, aligned with `lines`: each line's series (an index into
    # `series_strings`) and its time in output units (None when lines carry no time).
    series_codes: np.ndarray | None = None
    series_strings: pa.Array | None = None
    times: np.ndarray | None = None
    # Whether each line starts with its series string (then a space): true but for row-keyed
    # fields, whose field keys are added to the series for the duplicate check. A sink that
    # keys messages by series (Kafka) takes the series from here instead of scanning the lines.
    series_prefix: bool = True


@dataclass
class Encoder:
    """Encodes batches; remembers the type chosen for each AUTO column for the whole run.

    `decide_types` is the only step with state (the first batch with values fixes an AUTO
    column's type); call it in file order. `encode_typed`'s output depends on its arguments
    only (its memos and hints change how fast, never what), so batches whose types are
    decided can be encoded on several threads at once (Arrow's kernels release the GIL).
    """

    options: EncodeOptions
    inferred: dict[str, FieldType] = field(default_factory=dict)
    inferred_where: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what inference decided that the user must hear of
    # Checked and escaped name-like values (tags, measurements, row keys) by their batch dictionary:
    # the same few individuals recur in every batch, and checking them again costs ~10 kernel
    # calls per column and batch. Shared by the encoder threads (dict get/set are atomic).
    _names_memo: dict[tuple, tuple[pa.Array, tuple]] = field(default_factory=dict, repr=False)
    # Whether the last batch encoded had time cells Arrow's cast refuses: a speed hint for the
    # next one (parse_times), never a difference in output, so the threads may share it.
    _odd_times_last: bool = field(default=False, repr=False)

    def encode(self, plan: Plan, batch: pa.RecordBatch, *, where: str) -> Encoded:
        return self.encode_typed(plan, batch, self.decide_types(plan, batch, where=where))

    def decide_types(self, plan: Plan, batch: pa.RecordBatch, *, where: str) -> dict[str, FieldType]:
        """The type of every field with a value in this batch (keys of all-empty fields are absent)."""
        types: dict[str, FieldType] = {}
        for fld in plan.fields:
            raw = batch.column(fld.index)
            if raw.null_count < len(raw):
                types[fld.key] = self._type_of(fld, raw, where)
        return types

    def encode_typed(self, plan: Plan, batch: pa.RecordBatch, types: dict[str, FieldType],
                     errors: RowErrors | None = None) -> Encoded:
        """`errors`: rows already rejected before encoding (the reader's unbalanced quotes); their
        reasons come first."""
        errors = errors if errors is not None else RowErrors(batch.num_rows)
        non_finite: list[pa.Array] = []
        tags: list[tuple[str, pa.DictionaryArray, pa.Array]] = []
        field_pieces: list[FieldText] = []
        key_bytes: list[int | tuple[pa.Array, pa.Array]] = []  # each piece's key length, or its keys per row
        coordinates: dict[str, pa.Array] = {}
        row_keys: tuple[pa.Array, pa.Array] | None = None  # a field key per row (row_keys.py)

        head = self._measurement(plan, batch, errors)
        for tag in plan.tags:
            distinct = self._tag_dictionary(tag.escaped_key, tag.column, "tag", batch.column(tag.index), errors)
            if distinct is not None:
                tags.append((tag.key, *distinct))
        for fld in plan.fields:
            ftype = types.get(fld.key)
            if ftype is None:
                continue  # nothing to say for this column in this batch
            raw = batch.column(fld.index)
            piece, dropped_here = self._field_piece(fld, ftype, raw, errors)
            if self.options.s2_level is not None and fld.key in ("lat", "lon") and ftype is FieldType.FLOAT:
                coordinates[fld.key] = piece.value.cast(pa.float64())  # the text is null where the value is
            if isinstance(fld, RowKeyedField):
                piece, row_keys = self._keyed_by_row(fld, piece, batch, errors)
            if dropped_here is not None:
                non_finite.append(dropped_here)
            field_pieces.append(piece)
            key_bytes.append(row_keys if isinstance(fld, RowKeyedField) else len(fld.escaped_key.encode()))
        if self.options.s2_level is not None and {"lat", "lon"} <= coordinates.keys():
            distinct = geo.s2_cell_dictionary(coordinates["lat"], coordinates["lon"], self.options.s2_level)
            tags.append((S2_TAG_KEY, distinct, pc.binary_join_element_wise("," + S2_TAG_KEY + "=", distinct.dictionary, "")))
        tags.sort(key=lambda t: t[0].encode())

        series_strings, series_codes = _series(head, [(d, pieces) for _, d, pieces in tags], batch.num_rows)
        field_arguments, no_field = _field_arguments(field_pieces, batch.num_rows)
        errors.add(no_field, rowerrors.NO_FIELD)
        errors.add(_over_key_limit(series_strings, series_codes, field_pieces, key_bytes), rowerrors.SERIES_KEY_TOO_LONG)

        parts: list[pa.Array | pa.Scalar] = [pa.scalar(" "), *field_arguments]
        times = None
        if plan.time is not None:
            parsed = parse_times(batch.column(plan.time.index), fmt=plan.time.format, timezone=plan.time.timezone,
                                 precision=self.options.precision, cast_first=not self._odd_times_last)
            self._odd_times_last = parsed.odd_cells
            for kind, mask in parsed.problems:
                detail = (plan.time.timezone if "local" in kind else plan.time.format if kind != OUT_OF_RANGE
                          else f"-p {self.options.precision.value}: {range_text(self.options.precision)}")
                errors.add(mask, rowerrors.time_problem(kind, plan.time.column, detail), batch.column(plan.time.index))
            parts += [pa.scalar(" "), parsed.values.cast(pa.string())]
            times = pc.fill_null(parsed.values, 0).to_numpy(zero_copy_only=False)
        parts.append(pa.scalar("\n"))
        # One series in the batch (no tags, or constant ones): a scalar the join broadcasts,
        # as long as some other argument is an array that gives the join its length.
        if len(series_strings) == 1 and any(isinstance(part, pa.Array) for part in parts):
            series = series_strings[0]
        else:
            series = series_strings.take(pa.array(series_codes))
        if row_keys is not None:
            series_strings, series_codes = _with_field_keys(series_strings, series_codes, *row_keys)
        lines = pc.binary_join_element_wise(*_merge_constants([series, *parts]), "", null_handling="replace",
                                            null_replacement="")
        if errors.mask is not None:
            keep = pc.invert(errors.mask)
            lines = lines.filter(keep)
            written = keep.to_numpy(zero_copy_only=False)
            series_codes = series_codes[written]
            times = times[written] if times is not None else None
        return Encoded(lines, errors, _count_in_written_rows(non_finite, errors), series_codes, series_strings, times,
                       series_prefix=row_keys is None)

    # ------------------------------------------------------------ measurement and tags

    def _measurement(self, plan: Plan, batch: pa.RecordBatch, errors: RowErrors) -> pa.Array | pa.Scalar:
        if plan.measurement is not None:
            return pa.scalar(plan.measurement)
        assert plan.measurement_index is not None
        column = plan.header[plan.measurement_index]
        raw = batch.column(plan.measurement_index)
        errors.add(pc.is_null(raw), rowerrors.empty_measurement(column), raw)
        distinct = raw.dictionary_encode()

        def check(dictionary: pa.Array) -> tuple[pa.Array, tuple]:
            text, problems = self._check_names(dictionary, column, "measurement",
                                               names.AMBIGUOUS_BACKSLASH_IN_MEASUREMENT)
            comment = pc.starts_with(text, "#")
            problems += ((comment, rowerrors.comment_measurement(column)),) if cells.any_true(comment) else ()
            return escape.measurement_values(text), problems

        return self._names(distinct, ("measurement", column), check, errors, raw).take(distinct.indices)

    def _tag_dictionary(self, escaped_key: str, column: str, role: str, raw: pa.Array,
                        errors: RowErrors) -> tuple[pa.DictionaryArray, pa.Array] | None:
        """The column dictionary-encoded, and `,key=value` for each distinct value (checked and escaped once)."""
        if raw.null_count == len(raw):
            return None  # empty tags are left out
        distinct = raw.dictionary_encode()

        def check(dictionary: pa.Array) -> tuple[pa.Array, tuple]:
            text, problems = self._check_names(dictionary, column, role, names.AMBIGUOUS_BACKSLASH_IN_KEY)
            return pc.binary_join_element_wise("," + escaped_key + "=", escape.tag_values(text), ""), problems

        return distinct, self._names(distinct, (role, column, escaped_key), check, errors, raw)

    def _names(self, distinct: pa.DictionaryArray, kind: tuple, check, errors: RowErrors, raw: pa.Array) -> pa.Array:
        """`check(dictionary)` -> (text per value, its problems), remembered for small dictionaries;
        the rows of values with a problem are rejected."""
        dictionary = distinct.dictionary
        key = (*kind, tuple(dictionary.to_pylist())) if len(dictionary) <= NAMES_MEMO_MAX_VALUES else None
        found = self._names_memo.get(key) if key is not None else None
        if found is None:
            found = check(dictionary)
            if key is not None:
                if len(self._names_memo) >= NAMES_MEMO_MAX_ENTRIES:
                    self._names_memo.clear()
                self._names_memo[key] = found
        text, problems = found
        for bad_values, reason in problems:
            _add_by_dictionary(errors, distinct, bad_values, reason, raw)
        return text

    def _check_names(self, dictionary: pa.Array, column: str, role: str,
                     ambiguous: str) -> tuple[pa.Array, tuple[tuple[pa.Array, rowerrors.Reason], ...]]:
        """The dictionary of a name-like column (tag, measurement, row key) as text, and the masks
        of its bad values with their reasons (only masks with a bad value, in the order of checks)."""
        problems: list[tuple[pa.Array, rowerrors.Reason]] = []
        text = cells.to_text(dictionary)
        if cells.any_true(text.bad):
            problems.append((text.bad, rowerrors.invalid_utf8(column)))
        values = self._replace_or_reject(text.values, names.CONTROL_CHARS,
                                         lambda mask: problems.append((mask, rowerrors.control_character(role, column))))
        backslash = escape.has_match(values, ambiguous)
        if cells.any_true(backslash):
            problems.append((backslash, rowerrors.ambiguous_backslash(role, column)))
        return values, tuple(problems)

    def _replace_or_reject(self, values: pa.Array, pattern: str, reject) -> pa.Array:
        """Values matching `pattern` get spaces instead (--control-chars replace), or their rows rejected."""
        matches = escape.has_match(values, pattern)
        if not cells.any_true(matches):
            return values
        if self.options.replace_control_chars:
            return escape.replace_matches(values, pattern)
        reject(matches)
        return values

    # ------------------------------------------------------------ fields

    def _keyed_by_row(self, fld: RowKeyedField, piece: "FieldText", batch: pa.RecordBatch,
                      errors: RowErrors) -> tuple["FieldText", tuple[pa.Array, pa.Array]]:
        """`piece` with each row's key read from column `fld.key_index`, checked and escaped once
        per distinct key like a tag value; rows with an empty key get no such field. Also the
        escaped keys and each row's index into them, for the duplicate check."""
        raw = batch.column(fld.key_index)
        distinct = raw.dictionary_encode()

        def check(dictionary: pa.Array) -> tuple[pa.Array, tuple]:
            text, problems = self._check_names(dictionary, fld.key_column, "field key", names.AMBIGUOUS_BACKSLASH_IN_KEY)
            reserved = pc.is_in(text, value_set=_RESERVED_FIELD_KEYS)
            if cells.any_true(reserved):
                problems += ((reserved, rowerrors.reserved_field_key(fld.key_column)),)
            return escape.tag_values(text), problems

        keys = self._names(distinct, ("field key", fld.key_column), check, errors, raw)
        assert isinstance(piece.prefix, str)
        after_key = piece.prefix[len(fld.escaped_key):]  # "=" or '="'
        prefixes = pc.binary_join_element_wise(keys, after_key, "").take(distinct.indices)
        keyed = FieldText(prefixes, pc.if_else(pc.is_valid(prefixes), piece.value, NULL_TEXT), piece.suffix)
        return keyed, (keys, distinct.indices)

    def _type_of(self, fld: ResolvedField, raw: pa.Array, where: str) -> FieldType:
        """A declared type, or the type an AUTO column got from its first non-empty batch."""
        if fld.type is not FieldType.AUTO:
            return fld.type
        known = self.inferred.get(fld.key)
        if known is None:
            if cells.looks_like(raw, "float"):
                known = FieldType.FLOAT
                if float_changes(pc.drop_null(raw)) is not None and cells.to_integer(pc.drop_null(raw)).bad is None:
                    # Integers a float would change (IDs past 2**53): written as integers, and said so.
                    known = FieldType.INTEGER
                    self.notes.append(
                        f"column {fld.column!r} holds integers that a float would change (such as "
                        f"{_first_changed(raw)}): its type is integer (`{fld.escaped_key}=...i`), not float; "
                        f"--type {fld.column}=float writes floats instead")
            elif cells.looks_like(raw, "boolean"):
                known = FieldType.BOOLEAN
            else:
                known = FieldType.STRING
            self.inferred[fld.key] = known
            self.inferred_where[fld.key] = where
        return known

    def _field_piece(self, fld: ResolvedField, ftype: FieldType, raw: pa.Array,
                     errors: RowErrors) -> tuple["FieldText", pa.Array | None]:
        """The field's formatted values, and the mask of NaN/±Inf values left out."""
        if ftype is FieldType.STRING:
            text = cells.to_text(raw)
            errors.add(text.bad, rowerrors.invalid_utf8(fld.column), raw)
            limit = self.options.max_string_bytes
            errors.add(_longer_than(raw, limit) if limit else None, rowerrors.string_too_long(fld.column, limit or 0), raw)
            values = self._replace_or_reject(
                text.values, names.LINE_BREAKS, lambda mask: errors.add(mask, rowerrors.line_break(fld.column), raw))
            return FieldText(fld.escaped_key + '="', escape.string_field_values(values), '"'), None
        if ftype is FieldType.BOOLEAN:
            same = cells.same_cell_everywhere(raw)
            if same in cells.TRUE_WORDS or same in cells.FALSE_WORDS:
                # One value in every row: a scalar, which the line join merges with its neighbours.
                word = "true" if same in cells.TRUE_WORDS else "false"
                return FieldText(fld.escaped_key + "=", pa.scalar(word), ""), None
            converted = cells.to_boolean(raw)
            errors.add(converted.bad, rowerrors.invalid_value(ftype.value, fld.column), raw)
            return FieldText(fld.escaped_key + "=", pc.if_else(converted.values, "true", "false"), ""), None
        numbers = number_text(raw, ftype, exact_integers=fld.type is FieldType.AUTO)
        errors.add(numbers.bad, rowerrors.invalid_value(ftype.value, fld.column), raw)
        errors.add(numbers.changed, rowerrors.integer_changed_by_float(fld.column), raw)
        return FieldText(fld.escaped_key + "=", numbers.text, SUFFIX_BY_TYPE.get(ftype, "")), numbers.non_finite

