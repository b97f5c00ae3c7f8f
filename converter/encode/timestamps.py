"""The time column -> exact integer timestamps in the output precision.

Everything goes through int64 nanoseconds, the unit line protocol is defined in: its range
(1677-09-21T00:12:43.145224194Z .. 2262-04-11T23:47:16.854775806Z) is checked there, then
the value is floored to the precision, so that coarser precisions never move a point
later in time and the order of points is kept.

A time written in a coarser precision is multiplied back into nanoseconds by the server,
and must land in that range again: InfluxDB 1.6.7 refuses `-9223372036855` at `ms` ("time
outside range"), which is where 1677-09-21T00:12:43.145224194Z floors to, and stores
`-9223372036854`. So the lowest time at a precision is the range's start rounded up to a
whole unit (`lowest_ns`), and times floored below it are out of range too.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..mapping import EPOCH_UNITS, Precision
from . import cells
from .escape import has_match
from .time_text import (BISECT_SHARE, LP_MAX_NS, LP_MIN_NS, MIN_BISECTED, UNPARSEABLE, _naive_times, _plain_iso,
                        _seconds_plus_fraction)

ZONE_SUFFIX = r"([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$"
NULL_TEXT = pa.scalar(None, pa.string())

OUT_OF_RANGE = "out of range"
LOCAL_TIME_GAP = "nonexistent or ambiguous local"
EMPTY = "empty"


@dataclass(frozen=True)
class ParsedTimes:
    values: pa.Array  # int64 in the output precision, null where a row is bad
    problems: tuple[tuple[str, pa.Array], ...]  # (kind, mask) for each kind that occurred
    # ISO times only: the column had cells Arrow's whole-column cast refuses (a bad cell, an
    # offset, a rarer shape). The caller may then skip that cast for the next batch: see below.
    odd_cells: bool = False


def parse_times(raw: pa.Array, *, fmt: str, timezone: str, precision: Precision,
                cast_first: bool = True) -> ParsedTimes:
    """A time column -> int64 in `precision`, and what was wrong with which rows.

    ISO times are first cast by Arrow as a whole column (~22 ns a cell), which refuses the whole
    column for one bad cell; then a byte scan (`_plain_iso`, ~40 ns a cell) reads the plain cells
    and finds the others. With `cast_first=False` (the previous batch had odd cells: 1 % of bad
    rows puts one in every batch) the refused cast (~0.35 ms a batch) is not tried. The values
    are the same either way."""
    problems: list[tuple[str, pa.Array]] = []
    odd_cells = False

    def note(kind: str, mask: pa.Array | None) -> None:
        if cells.any_true(mask):
            problems.append((kind, pc.fill_null(mask, False)))

    note(EMPTY, pc.is_null(raw))
    lowest = lowest_ns(precision)
    if fmt in EPOCH_UNITS:
        ns = _epoch_to_ns(raw, EPOCH_UNITS[fmt], lowest, note)
    else:
        text = cells.to_text(raw)
        note(UNPARSEABLE, text.bad)
        if "%" in fmt:
            ns = _localize(_strptime(text.values, fmt, note), timezone, note)
        else:
            ns, odd_cells = _iso(text.values, timezone, note, cast_first)
        outside = pc.fill_null(pc.or_(pc.less(ns, lowest), pc.greater(ns, LP_MAX_NS)), False)
        if cells.any_true(outside):
            note(OUT_OF_RANGE, outside)
            ns = pc.if_else(outside, pa.scalar(None, pa.int64()), ns)
    return ParsedTimes(floor_to_precision(ns, precision), tuple(problems), odd_cells)


@functools.cache
def lowest_ns(precision: Precision) -> int:
    """The earliest time (int64 ns) a line at `precision` can carry: the start of line protocol's
    range rounded up to a whole unit (see the top of this module)."""
    unit = precision.ns_per_unit
    return -(-LP_MIN_NS // unit) * unit


@functools.cache
def range_text(precision: Precision) -> str:
    """The times a line at `precision` can carry, as RFC 3339 in that precision's digits."""
    unit = {"ns": "ns", "us": "us", "ms": "ms", "s": "s"}[precision.value]
    per_unit = precision.ns_per_unit
    first = np.datetime64(lowest_ns(precision) // per_unit, unit)
    last = np.datetime64(LP_MAX_NS // per_unit, unit)
    return f"{first}Z to {last}Z"


def _iso(text: pa.Array, timezone: str, note, cast_first: bool) -> tuple[pa.Array, bool]:
    """ISO 8601 / RFC 3339 (`2011-02-11 17:30:00.000`, `...T17:30:00Z`, `...+02:00`) to int64 ns (UTC),
    and whether the column had odd cells. Times with an offset keep it; times without one are in
    `timezone`."""
    if cast_first:
        try:  # the common case, a column of naive times, costs one cast: no search for offsets
            return _localize(text.cast(pa.timestamp("ns")), timezone, note), False
        except pa.ArrowInvalid:
            pass
    # Plain naive times are most of a column: only the other cells can carry an offset, so the
    # (slower) regex search for offsets runs on those alone.
    plain = _plain_iso(text)
    odd_cells = bool(plain.suspects.any() or plain.impossible.any())
    zoned_np = np.zeros(len(text), dtype=bool)
    if plain.suspects.any():
        rows = np.flatnonzero(plain.suspects)
        zoned_np[rows] = pc.fill_null(has_match(text.take(pa.array(rows)), ZONE_SUFFIX), False).to_numpy(
            zero_copy_only=False)
    if not zoned_np.any():
        return _localize(_naive_times(text, plain, note), timezone, note), odd_cells
    zoned = pa.array(zoned_np)
    text = pc.replace_substring_regex(text, r"[Zz]$", "+00:00")
    aware = _cast_iso(pc.if_else(zoned, text, NULL_TEXT), "UTC", note).cast(pa.int64())
    naive = _localize(_cast_iso(pc.if_else(zoned, NULL_TEXT, text), None, note), timezone, note)
    return pc.if_else(zoned, aware, naive), odd_cells


def _localize(stamps: pa.Array, timezone: str, note) -> pa.Array:
    """Naive timestamps read as local times in `timezone` -> int64 ns UTC."""
    if stamps.type.tz is None and timezone.upper() != "UTC":
        localized = cells.cast_per_element(
            stamps, lambda a: pc.assume_timezone(a, timezone=timezone), pa.timestamp("ns", timezone)
        )
        note(LOCAL_TIME_GAP, localized.bad)
        return _beyond_range(stamps.cast(pa.int64()), localized.values.cast(pa.int64()), note)
    return stamps.cast(pa.int64())


def _beyond_range(naive: pa.Array, utc: pa.Array, note) -> pa.Array:
    """`utc` with the times the zone's offset moved past line protocol's range nulled (out of range).

    Arrow's assume_timezone wraps around int64 without a word: 2262-04-11 23:00 in New York
    comes back as a time in 1677, and 1677-09-21 00:13 in Tokyo as one in 2262, both inside the
    range, so the range check after this cannot see them. The wrap is undone by the arithmetic:
    `utc - naive`, wrapping too, is the zone's true offset (hours, never near 2**63), so a time
    is beyond the range exactly when `naive + offset` would be, which is compared without adding."""
    local = pc.fill_null(naive, 0).to_numpy(zero_copy_only=False)
    offset = pc.fill_null(utc, 0).to_numpy(zero_copy_only=False) - local  # wraps like the cast did
    later, earlier = offset > 0, offset < 0
    beyond = np.zeros(len(local), dtype=bool)
    beyond[later] = local[later] > LP_MAX_NS - offset[later]
    beyond[earlier] = local[earlier] < LP_MIN_NS - offset[earlier]
    if not beyond.any():
        return utc
    mask = pa.array(beyond)
    note(OUT_OF_RANGE, mask)
    return pc.if_else(mask, pa.scalar(None, pa.int64()), utc)


def _cast_iso(text: pa.Array, tz: str | None, note) -> pa.Array:
    """Timestamps, for the rare columns that mix times with and without an offset. When Arrow's
    nanosecond cast refuses the column (a bad cell, or a time near the range ends, which its
    parser overflows on: 1677-09-21 00:12:43.146 fits but fails), the cells it refuses are parsed
    as whole seconds plus a fraction instead, vectorized, so that the bad cells are found without
    casting cell by cell, and a time beyond the range is called out of range. A few refused cells
    are found by bisection and only they take that slower path (~1 µs a cell against Arrow's
    ~30 ns); when many are refused, every cell takes it."""
    target = pa.timestamp("ns", tz)
    try:
        return text.cast(target)
    except pa.ArrowInvalid:
        scan = _plain_iso(text)
    suspects = scan.suspects | scan.impossible
    try:
        found = cells.cast_per_element(text, lambda a: a.cast(target), target, suspects=suspects,
                                       max_bad=max(MIN_BISECTED, len(text) // BISECT_SHARE))
    except cells.TooManyRefused:
        ns, parsed = _seconds_plus_fraction(text, tz)
        note(UNPARSEABLE, pc.and_(pc.is_valid(text), pc.invert(parsed)))
        return ns.cast(target)  # out-of-range values are found by the caller's range check
    assert found.bad is not None
    slow_ns, slow_parsed = _seconds_plus_fraction(text.filter(found.bad), tz)
    no_row = pa.array(np.zeros(len(text), dtype=bool))
    note(UNPARSEABLE, pc.replace_with_mask(no_row, found.bad, pc.invert(slow_parsed)))
    return pc.replace_with_mask(found.values.cast(pa.int64()), found.bad, slow_ns).cast(target)


def _strptime(text: pa.Array, fmt: str, note) -> pa.Array:
    """strptime, strict (see `_strptime_checked`). Arrow's nanosecond parse gives null for a time
    beyond int64 nanoseconds (2262-04-12, the year 3000): the cells it refuses are read again at
    seconds, and those that read so are out of range, not unparseable."""
    stamps, same = _strptime_checked(text, fmt, "ns")
    bad = pc.and_(pc.is_valid(text), pc.invert(same))
    if cells.any_true(bad):
        rows = np.flatnonzero(pc.fill_null(bad, False).to_numpy(zero_copy_only=False))
        _, wide = _strptime_checked(text.take(pa.array(rows)), fmt, "s")
        beyond = np.zeros(len(text), dtype=bool)
        beyond[rows] = wide.to_numpy(zero_copy_only=False)
        note(OUT_OF_RANGE, pa.array(beyond))
        note(UNPARSEABLE, pc.and_(bad, pa.array(~beyond)))
    return pc.if_else(same, stamps, pa.scalar(None, stamps.type))


def _strptime_checked(text: pa.Array, fmt: str, unit: str) -> tuple[pa.Array, pa.Array]:
    """strptime at `unit`, and where it read a time that is the text's (never null). Arrow's (like
    C's) rolls 31 February over to 3 March, so every parsed time is formatted back and must equal
    its text (leading zeros and case aside)."""
    stamps = pc.strptime(text, format=fmt, unit=unit, error_is_null=True)
    check_fmt, check_text, check_stamps = fmt, text, stamps
    zone = re.search(r"\s*%z$", fmt)
    if zone:
        # strftime can only write the time back in UTC, not in the row's own offset: check the
        # local date and time instead, parsed again without the offset at the end.
        check_fmt = fmt[: zone.start()]
        check_text = pc.replace_substring_regex(text, r"\s*([Zz]|[+-][0-9]{2}:?[0-9]{2})$", "")
        check_stamps = pc.strptime(check_text, format=check_fmt, unit=unit, error_is_null=True)
    # At second resolution: strftime writes %S of a nanosecond timestamp as "00.000000000".
    round_trip = pc.strftime(check_stamps.cast(pa.timestamp("s", check_stamps.type.tz)), format=check_fmt)
    same = pc.and_(pc.equal(_loose(round_trip), _loose(check_text)), pc.is_valid(stamps))
    return stamps, pc.fill_null(same, False)


def _loose(text: pa.Array) -> pa.Array:
    return pc.utf8_lower(pc.replace_substring_regex(text, r"(^|[^0-9])0+([0-9])", r"\1\2"))


def _epoch_to_ns(raw: pa.Array, ns_per_unit: int, lowest: int, note) -> pa.Array:
    ints = cells.to_integer(raw)
    note(UNPARSEABLE, ints.bad)
    low, high = -(-lowest // ns_per_unit), LP_MAX_NS // ns_per_unit
    outside = pc.fill_null(pc.or_(pc.less(ints.values, low), pc.greater(ints.values, high)), False)
    note(OUT_OF_RANGE, outside)
    inside = pc.if_else(outside, pa.scalar(None, pa.int64()), ints.values)
    return pc.multiply(inside, ns_per_unit)


def floor_to_precision(ns: pa.Array, precision: Precision) -> pa.Array:
    """Floor int64 nanoseconds to the precision unit (exact integer arithmetic, nulls kept)."""
    unit = precision.ns_per_unit
    if unit == 1:
        return ns
    valid = pc.is_valid(ns).to_numpy(zero_copy_only=False)
    # Nulls are filled before numpy sees the array: a nullable int64 would become float64.
    floored = np.floor_divide(pc.fill_null(ns, 0).to_numpy(zero_copy_only=False), unit)
    return pa.array(floored, type=pa.int64(), mask=~valid)
