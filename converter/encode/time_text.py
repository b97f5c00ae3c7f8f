"""Time text read in numpy, the fast path of timestamps.py: plain ISO 8601 cells byte by byte from the data buffer, the other ISO shapes by one regex and calendar arithmetic, Arrow's cast for the rest; and line protocol's time range, which every time must fit."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrow_buffers import cell_bytes, offsets_of

LP_MIN_NS = -9_223_372_036_854_775_806
LP_MAX_NS = 9_223_372_036_854_775_806


UNPARSEABLE = "unparseable"


# `YYYY-MM-DD HH:MM:SS` (or `T`), then an optional `.` and 1 to 9 digits: the shape of nearly
# every cell in a Movebank-like column. What its bytes minus ord("0") are, as uint8 (separators
# wrap around; anything that is not a digit lands above 9):
_PLAIN_ISO_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_DASH, _SPACE, _T, _COLON, _DOT = ((ord(c) - ord("0")) % 256 for c in "- T:.")
_PLAIN_ISO_SEPARATORS = [4, 7, 13, 16]
_SEPARATOR_BYTES = np.array([[_DASH], [_DASH], [_COLON], [_COLON]], dtype=np.uint8)
_PLAIN_ISO_MIN, _PLAIN_ISO_MAX = 19, 29
_SAFE_YEARS = (1678, 2261)  # clear of the range ends, where Arrow's cast overflows


@dataclass(frozen=True)
class PlainIso:
    """What a byte scan of a column of times found; every non-empty cell is in one of the masks."""

    plain: np.ndarray  # bool: a plain ISO time of a real day and clock, years 1678-2261
    ns: np.ndarray  # int64 nanoseconds since 1970 of the plain cells, read as UTC (0 elsewhere)
    impossible: np.ndarray  # bool: of that shape and years, but no real day or clock (30 February, 25:61)
    suspects: np.ndarray  # bool: any other shape, or years beyond: for a closer look


def _plain_iso(text: pa.Array) -> PlainIso:
    """The plain ISO times of a column (`2011-02-11 17:30:00.000`: a real calendar day and clock,
    years 1678-2261) read in numpy; cells of that shape with an impossible day or clock
    (`2011-02-30 25:61:00`) found without a cast; the other cells set aside as suspects. numpy
    over the string buffers, one byte position at a time across all cells (each step a contiguous
    vector op): a few dozen operations per batch, however many cells are bad. The times equal
    Arrow's cast of the same cells, and Arrow refuses the impossible ones
    (tests/test_timestamps.py)."""
    valid = pc.is_valid(text).to_numpy(zero_copy_only=False)
    lengths = np.diff(offsets_of(text))
    width = min(_PLAIN_ISO_MAX, int(lengths.max())) if len(lengths) else 0
    if width < _PLAIN_ISO_MIN:
        none = np.zeros(len(text), dtype=bool)
        return PlainIso(none, np.zeros(len(text), dtype=np.int64), none, valid)
    d, _ = _byte_positions(text, width)
    d -= np.uint8(ord("0"))
    ok = valid & (lengths >= _PLAIN_ISO_MIN) & (lengths <= _PLAIN_ISO_MAX) & (lengths != _PLAIN_ISO_MIN + 1)
    ok &= (d[_PLAIN_ISO_DIGITS] <= 9).all(axis=0) & (d[_PLAIN_ISO_SEPARATORS] == _SEPARATOR_BYTES).all(axis=0)
    ok &= (d[10] == _SPACE) | (d[10] == _T)
    if width > _PLAIN_ISO_MIN:  # a fraction follows a '.'
        ok &= (lengths == _PLAIN_ISO_MIN) | (d[_PLAIN_ISO_MIN] == _DOT)
    # The fraction's digits, as far as each cell goes, make nanoseconds once padded to 9 digits.
    fraction = np.zeros(len(lengths), dtype=np.int64)
    if width > _PLAIN_ISO_MIN + 1:
        digits = d[_PLAIN_ISO_MIN + 1:width]
        if (lengths == width).all():  # one length: every cell has every digit
            ok &= (digits <= 9).all(axis=0)
            for row in digits:
                fraction = fraction * 10 + row
        else:
            inside = lengths > np.arange(_PLAIN_ISO_MIN + 1, width)[:, None]
            ok &= ((digits <= 9) | ~inside).all(axis=0)
            for row, row_inside in zip(digits, inside):
                fraction = fraction * 10 + np.where(row_inside, row, 0)
        fraction *= 10 ** (_PLAIN_ISO_MAX - width)

    def number(*positions: int) -> np.ndarray:
        value = d[positions[0]].astype(np.int32)
        for position in positions[1:]:
            value = value * 10 + d[position]
        return value

    year, month, day = number(0, 1, 2, 3), number(5, 6), number(8, 9)
    hour, minute, second = number(11, 12), number(14, 15), number(17, 18)
    shaped = ok & (year >= _SAFE_YEARS[0]) & (year <= _SAFE_YEARS[1])
    # Tables by year and month instead of divisions per cell: any index is in bounds, the rows
    # it would be wrong for are not `shaped`.
    in_years = np.clip(year - _SAFE_YEARS[0], 0, len(_LEAP_YEAR) - 1)
    in_months = np.minimum(month, 13)
    leap = _LEAP_YEAR[in_years]
    real = (hour <= 23) & (minute <= 59) & (second <= 59) & (day >= 1) & (day <= _MOST_DAYS_IN_MONTH[in_months])
    real &= ~((month == 2) & (day == 29) & ~leap)
    days = _DAYS_BEFORE_YEAR[in_years] + _DAYS_BEFORE_MONTH[in_months] + (leap & (month > 2)) + (day - 1)
    seconds = days * 86400 + hour * 3600 + minute * 60 + second
    plain = shaped & real
    ns = np.where(plain, seconds * 1_000_000_000 + fraction, 0)
    return PlainIso(plain, ns, shaped & ~real, valid & ~shaped)


def _naive_times(text: pa.Array, plain: PlainIso, note) -> pa.Array:
    """timestamp[ns] of a column of naive times: the plain cells as `_plain_iso` read them, the
    impossible ones unparseable (as `_seconds_plus_fraction`, which checks the same calendar,
    would say), the suspects (a rarer shape, a bad cell) read by `_seconds_plus_fraction` (~1 µs
    a cell against ~25 ns)."""
    ns, good, unparseable = plain.ns, plain.plain.copy(), plain.impossible.copy()
    rows = np.flatnonzero(plain.suspects)
    if rows.size:
        slow_ns, slow_parsed = _seconds_plus_fraction(text.take(pa.array(rows)), None)
        parsed = slow_parsed.to_numpy(zero_copy_only=False)
        ns[rows] = pc.fill_null(slow_ns, 0).to_numpy(zero_copy_only=False)
        good[rows] = parsed
        unparseable[rows[~parsed]] = True
    if unparseable.any():
        note(UNPARSEABLE, pa.array(unparseable))
    return pa.array(ns, pa.int64(), mask=~good).cast(pa.timestamp("ns"))


def _byte_positions(text: pa.Array, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `width` bytes of every cell as a (width, n) uint8 matrix, row k holding every
    cell's k-th byte (bytes past a cell's end are whatever follows it, or 0), and the cells'
    lengths."""
    n, offsets = len(text), offsets_of(text)
    lengths = np.diff(offsets)
    padded = np.concatenate((cell_bytes(text), np.zeros(width, dtype=np.uint8)))
    if n and lengths.min() == lengths.max():
        # Cells of one length lie at a fixed stride: each row is a strided view, no index arrays.
        view = np.lib.stride_tricks.as_strided(padded, shape=(width, n), strides=(1, int(lengths[0])))
        return view.copy(), lengths
    return padded[np.arange(width, dtype=np.int64)[:, None] + (offsets[:-1] - offsets[0])], lengths


# Bisection finds up to this share of refused cells (1/BISECT_SHARE of a batch, at least
# MIN_BISECTED): past it, parsing every cell the slow way is cheaper than more bisection.
BISECT_SHARE = 64
MIN_BISECTED = 16


ISO_PARTS = (r"^(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})"
             r"(?:[Tt ](?P<h>[0-9]{2}):(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2}))?)?"
             r"(?:\.(?P<frac>[0-9]{1,9}))?(?P<zone>[Zz]|(?P<sign>[+-])(?P<zh>[0-9]{2}):?(?P<zm>[0-9]{2}))?$")
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _real_day(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Whether each (year, month, day) is a day of the proleptic Gregorian calendar."""
    month_ok = (month >= 1) & (month <= 12)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days_in_month = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + (leap & (month == 2))
    return month_ok & (day >= 1) & (day <= days_in_month)


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm, in numpy)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_SAFE_YEAR_RANGE = np.arange(_SAFE_YEARS[0], _SAFE_YEARS[1] + 1)
_LEAP_YEAR = _real_day(_SAFE_YEAR_RANGE, np.full_like(_SAFE_YEAR_RANGE, 2), np.full_like(_SAFE_YEAR_RANGE, 29))
_DAYS_BEFORE_YEAR = _days_from_civil(_SAFE_YEAR_RANGE, np.ones_like(_SAFE_YEAR_RANGE), np.ones_like(_SAFE_YEAR_RANGE))
# By month (1-12; 0 and 13 stand for any impossible month): days before its first day in a common
# year, and its most days (29 for February).
_DAYS_BEFORE_MONTH = np.array([0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 0], dtype=np.int64)
_MOST_DAYS_IN_MONTH = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 0], dtype=np.int64)


def _seconds_plus_fraction(text: pa.Array, tz: str | None) -> tuple[pa.Array, pa.Array]:
    """int64 ns (clamped just outside the range when the time lies beyond it) and a parsed mask.

    One regex splits every cell into its parts; the calendar (month, days in the month, hours,
    minutes, seconds) is checked and the seconds since 1970 are computed in integer arithmetic
    (Arrow's own parsers would roll 30 February over, or overflow near the range ends). Cells of
    a shape the regex does not know get Arrow's own cast, one by one: they are rare."""
    parts = _iso_parts(text)
    number = parts.numbers
    year, month, day = number["y"], number["mo"], number["d"]
    hour, minute, second = number["h"], number["mi"], number["s"]
    valid = parts.matched & _real_day(year, month, day) & (hour <= 23) & (minute <= 59) & (second <= 59)
    valid &= (number["zh"] <= 23) & (number["zm"] <= 59)  # as RFC 3339 (and Arrow's cast) say
    zone = (number["zh"] * 3600 + number["zm"] * 60) * np.where(parts.negative, -1, 1)
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - zone
    fraction = parts.fraction_ns.copy()  # Arrow's numpy view is read-only; the next step may fill it
    _arrow_cast_for_the_rest(text, parts.matched, seconds, fraction, valid, tz)
    # Compare (seconds, fraction) with the range ends without overflowing int64.
    low_s, low_f = divmod(LP_MIN_NS, 1_000_000_000)
    high_s, high_f = divmod(LP_MAX_NS, 1_000_000_000)
    below = (seconds < low_s) | ((seconds == low_s) & (fraction < low_f))
    above = (seconds > high_s) | ((seconds == high_s) & (fraction > high_f))
    inside_s = np.clip(seconds, low_s, high_s)
    # (s + 1) * 1e9 + (f - 1e9) == s * 1e9 + f, and stays in int64 at the low end.
    ns = (inside_s + 1) * 1_000_000_000 + (fraction - 1_000_000_000)
    ns = np.where(below, LP_MIN_NS - 1, np.where(above, LP_MAX_NS + 1, ns))
    return pa.array(ns, pa.int64(), mask=~valid), pa.array(valid)


@dataclass
class _IsoParts:
    matched: np.ndarray  # bool: the cell has ISO_PARTS' shape
    numbers: dict[str, np.ndarray]  # int64 per group of ISO_PARTS, its default where the group is absent
    negative: np.ndarray  # bool: the offset's sign is '-'
    fraction_ns: np.ndarray  # int64: the fraction of a second in ns


_NUMBER_DEFAULTS = {"y": 1970, "mo": 1, "d": 1, "h": 0, "mi": 0, "s": 0, "zh": 0, "zm": 0}
# Below this many cells, Python's re reads them one by one faster than Arrow's regex kernel and
# the casts around it, whose fixed cost (~1 ms) a batch with a few bad times would pay in full.
FEW_CELLS = 64
_ISO_PARTS_RE = re.compile(ISO_PARTS)


def _iso_parts(text: pa.Array) -> _IsoParts:
    """ISO_PARTS' groups of every cell, as numpy arrays."""
    if len(text) < FEW_CELLS:
        return _iso_parts_few(text.to_pylist())
    parts = pc.extract_regex(text, ISO_PARTS)

    def number(name: str, default: int) -> np.ndarray:
        # An optional group that took no part in the match comes back as "", not null.
        value = pc.fill_null(parts.field(name), "")
        value = pc.if_else(pc.equal(value, ""), str(default), value)
        return value.cast(pa.int64()).to_numpy(zero_copy_only=False)

    negative = pc.equal(pc.fill_null(parts.field("sign"), ""), "-").to_numpy(zero_copy_only=False)
    fraction = pc.utf8_rpad(pc.fill_null(parts.field("frac"), ""), 9, "0").cast(pa.int64())
    return _IsoParts(pc.is_valid(parts).to_numpy(zero_copy_only=False),
                     {name: number(name, default) for name, default in _NUMBER_DEFAULTS.items()},
                     negative, fraction.to_numpy(zero_copy_only=False))


def _iso_parts_few(cells: list[str | None]) -> _IsoParts:
    """The same as the Arrow path, cell by cell (tests/test_timestamps.py holds them equal)."""
    found = [_ISO_PARTS_RE.fullmatch(cell) if cell is not None else None for cell in cells]
    numbers = {name: np.array([int(m[name]) if m is not None and m[name] else default for m in found], dtype=np.int64)
               for name, default in _NUMBER_DEFAULTS.items()}
    return _IsoParts(np.array([m is not None for m in found], dtype=bool), numbers,
                     np.array([m is not None and m["sign"] == "-" for m in found], dtype=bool),
                     np.array([int((m["frac"] or "").ljust(9, "0")) if m is not None else 0 for m in found],
                              dtype=np.int64))


def _arrow_cast_for_the_rest(text: pa.Array, matched: np.ndarray, seconds: np.ndarray, fraction: np.ndarray,
                             valid: np.ndarray, tz: str | None) -> None:
    """Cells of a shape the regex does not know get Arrow's cast, one cell at a time (Python per
    such cell: they are bad cells, or rare shapes), so this path never accepts less than Arrow's.
    Cells the regex read but the calendar check refused (30 February, 25:61, offset +25:00) are
    not tried: Arrow's cast refuses those too (tests/test_timestamps.py). Fills the arrays in place."""
    unread = np.flatnonzero(pc.is_valid(text).to_numpy(zero_copy_only=False) & ~matched)
    for i in unread.tolist():
        cell = text[i].as_py()
        try:
            ns = pa.array([cell]).cast(pa.timestamp("ns", tz)).cast(pa.int64())[0].as_py()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        seconds[i], fraction[i] = divmod(ns, 1_000_000_000)
        valid[i] = True
