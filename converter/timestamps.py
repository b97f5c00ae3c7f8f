"""The time column -> exact integer timestamps in the output precision.

Everything goes through int64 nanoseconds, the unit line protocol is defined in: its range
(1677-09-21T00:12:43.145224194Z .. 2262-04-11T23:47:16.854775806Z) is checked there, then
the value is floored to the precision, so that coarser precisions never move a point
later in time and the order of points is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import cells
from .escape import has_match
from .mapping import EPOCH_UNITS, Precision

LP_MIN_NS = -9_223_372_036_854_775_806
LP_MAX_NS = 9_223_372_036_854_775_806
ZONE_SUFFIX = r"([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$"
NULL_TEXT = pa.scalar(None, pa.string())

UNPARSEABLE = "unparseable"
OUT_OF_RANGE = "out of range"
LOCAL_TIME_GAP = "nonexistent or ambiguous local time"
EMPTY = "empty"


@dataclass(frozen=True)
class ParsedTimes:
    values: pa.Array  # int64 in the output precision, null where a row is bad
    problems: tuple[tuple[str, pa.Array], ...]  # (kind, mask) for each kind that occurred


def parse_times(raw: pa.Array, *, fmt: str, timezone: str, precision: Precision) -> ParsedTimes:
    problems: list[tuple[str, pa.Array]] = []

    def note(kind: str, mask: pa.Array | None) -> None:
        if cells.any_true(mask):
            problems.append((kind, mask))

    note(EMPTY, pc.is_null(raw))
    if fmt in EPOCH_UNITS:
        ns = _epoch_to_ns(raw, EPOCH_UNITS[fmt], note)
    else:
        text = cells.to_text(raw)
        note(UNPARSEABLE, text.bad)
        if "%" in fmt:
            stamps = _strptime(text.values, fmt, note)
        else:
            stamps = _iso(text.values, note)
        if stamps.type.tz is None and timezone.upper() != "UTC":
            localized = cells.cast_per_element(
                stamps, lambda a: pc.assume_timezone(a, timezone=timezone), pa.timestamp("ns", timezone)
            )
            note(LOCAL_TIME_GAP, localized.bad)
            stamps = localized.values
        ns = stamps.cast(pa.int64())
        outside = pc.fill_null(pc.or_(pc.less(ns, LP_MIN_NS), pc.greater(ns, LP_MAX_NS)), False)
        if cells.any_true(outside):
            note(OUT_OF_RANGE, outside)
            ns = pc.if_else(outside, pa.scalar(None, pa.int64()), ns)
    return ParsedTimes(floor_to_precision(ns, precision), tuple(problems))


def _iso(text: pa.Array, note) -> pa.Array:
    """ISO 8601 / RFC 3339 (`2011-02-11 17:30:00.000`, `...T17:30:00Z`, `...+02:00`) to int64 ns."""
    zoned = has_match(text, ZONE_SUFFIX)
    if cells.any_true(zoned):
        text = pc.replace_substring_regex(text, r"[Zz]$", "+00:00")
        aware = _cast_iso(pc.if_else(zoned, text, NULL_TEXT), "UTC", note)
        naive = _cast_iso(pc.if_else(zoned, NULL_TEXT, text), None, note)
        return pc.if_else(zoned, aware, naive).cast(pa.timestamp("ns", "UTC"))
    return _cast_iso(text, None, note).cast(pa.timestamp("ns"))


def _cast_iso(text: pa.Array, tz: str | None, note) -> pa.Array:
    """int64 nanoseconds. Cells Arrow cannot cast to nanoseconds get a second try in microseconds:
    Arrow's nanosecond parser overflows on whole seconds near the range ends (1677-09-21 00:12:43.146
    fails though it fits), and a time far outside the range parses there, so it can be called out of range."""
    target = pa.timestamp("ns", tz)
    converted = cells.cast_per_element(text, lambda a: a.cast(target), target)
    ns = converted.values.cast(pa.int64())
    if converted.bad is None:
        return ns
    coarse = pa.timestamp("us", tz)
    retry = cells.cast_per_element(pc.if_else(converted.bad, text, NULL_TEXT), lambda a: a.cast(coarse), coarse)
    us = retry.values.cast(pa.int64())
    inside = pc.and_(pc.greater_equal(us, -(-LP_MIN_NS // 1000)), pc.less_equal(us, LP_MAX_NS // 1000))
    rescued = pc.fill_null(pc.and_(converted.bad, inside), False)
    parsed_outside = pc.fill_null(pc.and_(converted.bad, pc.invert(inside)), False)
    note(OUT_OF_RANGE, parsed_outside)
    note(UNPARSEABLE, pc.and_(converted.bad, pc.is_null(us)))
    return pc.if_else(rescued, pc.multiply(us, 1000), ns)


def _strptime(text: pa.Array, fmt: str, note) -> pa.Array:
    stamps = pc.strptime(text, format=fmt, unit="ns", error_is_null=True)
    note(UNPARSEABLE, pc.and_(pc.is_valid(text), pc.is_null(stamps)))
    return stamps


def _epoch_to_ns(raw: pa.Array, ns_per_unit: int, note) -> pa.Array:
    ints = cells.to_integer(raw)
    note(UNPARSEABLE, ints.bad)
    low, high = -(-LP_MIN_NS // ns_per_unit), LP_MAX_NS // ns_per_unit
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
