"""Lines assembled from whole arrays: series keys, the joined field list, and the limits InfluxDB sets on them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrow_buffers import offsets_of
from ..books import rowerrors
from ..books.rowerrors import RowErrors
from . import cells
from .number_text import float_changes

# InfluxDB's limit on a series key with its field (TSM index keys carry a 2-byte length; the
# check on writes came with influxdata/influxdb#8425): measurement and tag set as written, "#!~#",
# the field key as written, at most 65,535 bytes. InfluxDB 1.6.7 and 2.8.0 both take a series key
# of 65,530 bytes with the field key "f" and refuse one of 65,531, and refuse a line for its
# longest field key (tests/test_hostile_values.py).
MAX_KEY_BYTES = 65_535
FIELD_KEY_SEPARATOR_BYTES = len("#!~#")


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
