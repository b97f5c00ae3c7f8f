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

from . import cells, escape, geo
from ..books import rowerrors
from ..arrow_buffers import offsets_of
from ..mapping import FieldType, Plan, Precision, ResolvedField, names
from .number_text import float_changes, number_text
from .row_keys import RowKeyedField
from ..books.rowerrors import RowErrors
from .timestamps import OUT_OF_RANGE, parse_times, range_text

NULL_TEXT = pa.scalar(None, pa.string())
_RESERVED_FIELD_KEYS = pa.array(list(names.RESERVED_FIELD_KEYS), pa.string())
S2_TAG_KEY = "s2_cell_id"

SUFFIX_BY_TYPE = {FieldType.INTEGER: "i", FieldType.UNSIGNED: "u"}
NAMES_MEMO_MAX_VALUES = 64  # larger dictionaries (a tag with a value per row) are checked every time
NAMES_MEMO_MAX_ENTRIES = 4096


# InfluxDB's limit on a series key with its field (TSM index keys carry a 2-byte length; the
# check on writes came with influxdata/influxdb#8425): measurement and tag set as written, "#!~#",
# the field key as written, at most 65,535 bytes. InfluxDB 1.6.7 and 2.8.0 both take a series key
# of 65,530 bytes with the field key "f" and refuse one of 65,531, and refuse a line for its
# longest field key (tests/test_hostile_values.py).
MAX_KEY_BYTES = 65_535
FIELD_KEY_SEPARATOR_BYTES = len("#!~#")
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
        return Encoded(lines, errors, _count_in_written_rows(non_finite, errors), series_codes, series_strings, times)

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


@dataclass(frozen=True)
class FieldText:
    """One field of every row: `<prefix><value><suffix>`, absent where `value` is null."""

    prefix: str | pa.Array  # escaped key and '=' (and the opening quote of a string); per row: row_keys.py
    value: pa.Array | pa.Scalar  # a scalar: the same value in every row
    suffix: str  # "i", "u", the closing quote, or ""


def _first_changed(raw: pa.Array) -> str:
    changed = float_changes(raw)
    assert changed is not None
    return raw.filter(changed)[0].as_py().decode()


def _longer_than(raw: pa.Array, limit: int) -> pa.Array | None:
    """Cells of more than `limit` bytes (numpy over the offsets; nothing when the whole column is shorter)."""
    offsets = offsets_of(raw)
    if int(offsets[-1]) - int(offsets[0]) <= limit:
        return None
    long = np.diff(offsets) > limit
    return pa.array(long) if long.any() else None


def _over_key_limit(series_strings: pa.Array, series_codes: np.ndarray, pieces: list["FieldText"],
                    key_bytes: list[int | tuple[pa.Array, pa.Array]]) -> pa.Array | None:
    """Rows whose series key with their longest field key is over InfluxDB's limit (MAX_KEY_BYTES).
    Measured on the distinct series first: only a batch with a series near the limit looks at rows."""
    # A null series string (a row another check rejects) counts as 0 bytes, not as NaN cast to int.
    series_bytes = pc.fill_null(pc.binary_length(series_strings), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    widest = [k if isinstance(k, int) else int(pc.max(pc.binary_length(k[0])).as_py() or 0) for k in key_bytes]
    if not widest or not len(series_bytes) or \
            int(series_bytes.max()) + FIELD_KEY_SEPARATOR_BYTES + max(widest) <= MAX_KEY_BYTES:
        return None
    longest = np.zeros(len(series_codes), dtype=np.int64)
    for piece, k in zip(pieces, key_bytes):
        present = np.ones(len(series_codes), dtype=bool) if isinstance(piece.value, pa.Scalar) else \
            pc.is_valid(piece.value).to_numpy(zero_copy_only=False)
        lengths = k if isinstance(k, int) else \
            pc.fill_null(pc.binary_length(k[0]).take(k[1]), 0).to_numpy(zero_copy_only=False)
        longest = np.maximum(longest, np.where(present, lengths, 0))
    over = series_bytes[series_codes] + FIELD_KEY_SEPARATOR_BYTES + longest > MAX_KEY_BYTES
    return pa.array(over) if over.any() else None


def _count_in_written_rows(masks: list[pa.Array], errors: RowErrors) -> int:
    """NaN/±Inf values count as dropped only in rows that became lines."""
    total = 0
    for mask in masks:
        if errors.mask is not None:
            mask = pc.and_(mask, pc.invert(errors.mask))
        total += int(pc.sum(mask).as_py() or 0)
    return total


def _series(head: pa.Array | pa.Scalar, tags: list[tuple[pa.DictionaryArray, pa.Array]],
            length: int) -> tuple[pa.Array, np.ndarray]:
    """Measurement + tag set of every row, built once per distinct combination of tag values:
    the distinct series strings, and each row's index into them.

    Each row gets one integer for its combination (mixed radix: each tag's dictionary index
    + 1, 0 when empty); the distinct integers are decoded back into their tags' pieces, the
    strings are built for those few combinations only, and one `take` spreads them over the
    rows. Should the radix product outgrow int64, the codes are renumbered densely first.
    """
    if isinstance(head, pa.Scalar) and not tags:
        return pa.array([head.as_py()], pa.string()), np.zeros(length, dtype=np.int64)
    if isinstance(head, pa.Scalar):
        codes = np.zeros(length, dtype=np.int64)
        levels: list[tuple[int, pa.Array]] = []
        strings = pa.array([head.as_py()], pa.string())
    else:
        distinct = head.dictionary_encode()
        codes = pc.fill_null(distinct.indices, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        strings = pc.fill_null(distinct.dictionary, "")
        levels = []
    span = len(strings)
    for distinct, pieces in tags:
        width = len(pieces) + 1
        if span * width >= 2**62:
            strings, codes = _combine(strings, levels, codes)
            levels, span = [], len(strings)
        index = pc.fill_null(distinct.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
        codes = codes * width + index
        levels.append((width, pa.concat_arrays([pa.array([""], pa.string()), pieces])))
        span *= width
    return _combine(strings, levels, codes)


def _with_field_keys(strings: pa.Array, codes: np.ndarray, keys: pa.Array,
                     key_codes: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Series strings and codes for the duplicate check when each line carries one field whose
    key comes from the row (row_keys.py): lines of one series and time with different keys are
    fields of one point, not duplicates, so the key joins the series (one more mixed-radix level)."""
    width = len(keys) + 1
    index = pc.fill_null(key_codes, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
    pieces = pa.concat_arrays([pa.array([""], pa.string()), pc.binary_join_element_wise(" ", keys, "")])
    return _combine(strings, [(width, pieces)], codes * width + index)


def _combine(strings: pa.Array, levels: list[tuple[int, pa.Array]], codes: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """Decode the distinct mixed-radix codes into strings; return them and dense per-row codes."""
    combined = pa.array(codes).dictionary_encode()
    remaining = combined.dictionary.to_numpy().copy()
    parts: list[pa.Array] = []
    for width, pieces in reversed(levels):
        parts.append(pieces.take(pa.array(remaining % width)))
        remaining //= width
    built = pc.binary_join_element_wise(strings.take(pa.array(remaining)), *reversed(parts), "")
    return built, combined.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def _field_arguments(fields: list[FieldText], length: int) -> tuple[list[pa.Array | pa.Scalar], pa.Array]:
    """The join arguments that write the field set, and the mask of rows without any field.

    A field is written as prefix, value, suffix, all three null where the value is, so that
    one join with nulls replaced by "" leaves them out. The prefix of each row is `key=` if
    no earlier field of that row is present and `,key=` otherwise: a running OR over the
    fields' validity (numpy booleans), then a `take` from those two strings. A field present
    in every row whose prefix is the same in every row gets its prefix and suffix as scalars
    instead (no `take`; `_merge_constants` then joins them with their neighbours). No string
    is built per field beyond its formatted value, and no comma needs cutting afterwards.
    """
    arguments: list[pa.Array | pa.Scalar] = []
    earlier = np.zeros(length, dtype=bool)
    for fld in fields:
        present = np.ones(length, dtype=bool) if isinstance(fld.value, pa.Scalar) else \
            pc.is_valid(fld.value).to_numpy(zero_copy_only=False)
        everywhere = bool(present.all())
        same_prefix = everywhere and isinstance(fld.prefix, str) and (earlier.all() or not earlier.any())
        if same_prefix:
            assert isinstance(fld.prefix, str)
            arguments.append(pa.scalar("," + fld.prefix if length and earlier[0] else fld.prefix))
        else:
            choice = pa.array(earlier.astype(np.int8), mask=~present)
            if isinstance(fld.prefix, str):
                arguments.append(pa.array([fld.prefix, "," + fld.prefix], pa.string()).take(choice))
            else:  # a key per row: the comma is joined on where an earlier field is present
                with_comma = pc.binary_join_element_wise(",", fld.prefix, "")
                arguments.append(pc.if_else(pa.array(earlier, mask=~present), with_comma, fld.prefix))
        arguments.append(fld.value)
        if fld.suffix:
            arguments.append(pa.scalar(fld.suffix) if everywhere else
                             pa.array([fld.suffix, fld.suffix], pa.string()).take(choice))
        earlier |= present
    return arguments, pa.array(~earlier)


def _merge_constants(parts: list[pa.Array | pa.Scalar]) -> list[pa.Array | pa.Scalar]:
    """Neighbouring scalars of a join made one (`i` + `,visible=`): the fewer the arguments,
    the less the join does per row. Keeps at least one array, which gives the join its length."""
    merged: list[pa.Array | pa.Scalar] = []
    for part in parts:
        if isinstance(part, pa.Scalar) and merged and isinstance(merged[-1], pa.Scalar):
            merged[-1] = pa.scalar(merged[-1].as_py() + part.as_py(), pa.string())
        else:
            merged.append(part)
    return merged


def _add_by_dictionary(errors: RowErrors, distinct: pa.DictionaryArray, bad_values: pa.Array | None,
                       reason: rowerrors.Reason, raw: pa.Array) -> None:
    """Reject the rows whose dictionary value is bad (a mask over the dictionary)."""
    if cells.any_true(bad_values):
        errors.add(pc.fill_null(bad_values.take(distinct.indices), False), reason, raw)
