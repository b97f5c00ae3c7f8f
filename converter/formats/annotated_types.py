"""Annotated-CSV datatypes -> our field types and time formats, and the cell rewrites that give
our casts the values `influx write` reads from the same cells.

InfluxData's converter (pkg/csv2lp, which `influx write` runs on CSV input) reads some cells
more loosely than our casts do: `long` drops everything from the decimal point on, numbers
may carry digit-group separators (`1 000`, `1_000`, or per a `double:,.` format), a plain
`boolean` looks at the first character only (`yes`, `Tak`, `1` are true). Each rewrite here
turns one column of raw cells into the spelling our casts accept, vectorized, and leaves a
cell it cannot read alone, so that the cast rejects its row with the usual reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ..encode import cells
from ..errors import MappingError
from ..encode.escape import has_match
from ..mapping import FieldType, Precision
from ..encode.timestamps import parse_times

Rewrite = Callable[[pa.Array], pa.Array]

FIELD_TYPES = {
    "string": FieldType.STRING,
    "double": FieldType.FLOAT,
    "long": FieldType.INTEGER,
    "unsignedLong": FieldType.UNSIGNED,
    "boolean": FieldType.BOOLEAN,
    # No datatype (or the generic `field`): pkg/csv2lp copies the text as it is; we infer the type.
    "": FieldType.AUTO,
}
# Datatypes pkg/csv2lp knows that we do not convert (yet).
UNSUPPORTED_FIELD_TYPES = ("duration", "base64Binary")
# The separators pkg/csv2lp removes from numbers when the datatype gives no format.
DEFAULT_NUMBER_FORMAT = ". \n\t\r_"
BINARY_NULL = pa.scalar(None, pa.binary())


def _any(mask: pa.Array) -> bool:
    return cells.any_true(mask)


def _rewrite_where(raw: pa.Array, pattern: str, rewrite: Rewrite) -> pa.Array:
    """Apply `rewrite` only when some cell matches `pattern`: most columns need nothing."""
    return rewrite(raw) if _any(has_match(raw, pattern)) else raw


# ---------------------------------------------------------------- numbers


@dataclass(frozen=True)
class NumberFormat:
    """`double:,.` -> fraction ',' and group separator '.' (the first character is the fraction)."""

    fraction: str
    ignored: str
    strict: bool = False

    @classmethod
    def parse(cls, text: str) -> NumberFormat:
        strict = text.startswith("strict")
        if strict:
            text = text[len("strict"):]
        text = text or DEFAULT_NUMBER_FORMAT
        return cls(text[0], text[1:], strict)


def number_rewrite(ftype: FieldType, fmt: NumberFormat) -> Rewrite:
    """Cells of a double/long/unsignedLong column -> the plain decimal spelling our casts read."""
    ignored = "[" + "".join(re.escape(c) for c in fmt.ignored) + "]" if fmt.ignored else None
    fraction = re.escape(fmt.fraction)

    def rewrite(raw: pa.Array) -> pa.Array:
        if ignored is not None:
            raw = _rewrite_where(raw, ignored, lambda a: pc.replace_substring_regex(a, ignored, ""))
        if ftype is FieldType.FLOAT:
            if fmt.fraction != ".":
                raw = pc.replace_substring(raw, fmt.fraction, ".")
            return raw
        if not fmt.strict:  # (under :strict a fraction stays, and the integer cast rejects the row)
            # pkg/csv2lp keeps what precedes the fraction (with a warning): 1.9 -> 1.
            raw = _rewrite_where(raw, fraction, lambda a: pc.replace_substring_regex(a, f"{fraction}[\\s\\S]*$", ""))
        if ftype is FieldType.INTEGER:
            # Go's ParseInt reads a leading '+', Arrow's cast does not (ParseUint refuses it too).
            raw = _rewrite_where(raw, r"^\+", lambda a: pc.replace_substring_regex(a, r"^\+", ""))
        return raw

    return rewrite


# ---------------------------------------------------------------- booleans

_TRUE_FIRST = [b"t", b"T", b"y", b"Y", b"1"]
_FALSE_FIRST = [b"f", b"F", b"n", b"N", b"0"]


def boolean_rewrite(fmt: str, column: str) -> Rewrite:
    """`boolean`: the first character decides; `boolean:yes,ja:no,nein`: exact words.

    With words, a cell in neither list is false when the false list is empty and true when
    the true list is empty (pkg/csv2lp's rule), otherwise it is rejected.
    """
    if fmt == "":
        return _first_character_boolean
    if ":" not in fmt:
        raise MappingError(f"column {column!r}: boolean format {fmt!r} must be TRUE,WORDS:FALSE,WORDS "
                           f"(for example boolean:y,yes:n,no).")
    true_text, false_text = fmt.split(":", 1)
    truthy = [w.encode() for w in true_text.split(",")] if true_text else []
    falsy = [w.encode() for w in false_text.split(",")] if false_text else []

    if not falsy:
        fallback: pa.Scalar | None = pa.scalar(b"false")
    elif not truthy:
        fallback = pa.scalar(b"true")
    else:
        fallback = None  # neither list: the row is rejected
    marker = f" (not in boolean:{fmt})".encode()

    def rewrite(raw: pa.Array) -> pa.Array:
        in_false = _in(raw, falsy)
        in_true = _in(raw, truthy)
        # A cell in neither list must fail the cast even if it spells a boolean ("true"): mark it.
        other = fallback if fallback is not None else pc.binary_join_element_wise(raw, marker, b"")
        out = pc.if_else(in_false, pa.scalar(b"false"), pc.if_else(in_true, pa.scalar(b"true"), other))
        return pc.if_else(pc.is_valid(raw), out, BINARY_NULL)

    return rewrite


def _in(raw: pa.Array, words: list[bytes]) -> pa.Array:
    return pc.fill_null(pc.is_in(raw, value_set=pa.array(words, pa.binary())), False)


def _first_character_boolean(raw: pa.Array) -> pa.Array:
    first = pc.binary_slice(raw, 0, 1)
    is_true = pc.fill_null(pc.is_in(first, value_set=pa.array(_TRUE_FIRST, pa.binary())), False)
    is_false = pc.fill_null(pc.is_in(first, value_set=pa.array(_FALSE_FIRST, pa.binary())), False)
    return pc.if_else(is_true, pa.scalar(b"true"), pc.if_else(is_false, pa.scalar(b"false"), raw))


# ---------------------------------------------------------------- time


@dataclass(frozen=True)
class TimeFormat:
    """A dateTime column as our time parser sees it, and the rewrite it needs first (if any)."""

    format: str
    rewrite: Rewrite | None = None


# Go reference-time layout elements (package time, nextStdChunk) -> strptime. The one-digit
# forms (1, 2, 3, 4, 5) accept values with or without a leading zero; so does strptime.
_GO_LAYOUT = [
    ("January", "%B"), ("Jan", "%b"), ("Monday", "%A"), ("Mon", "%a"), ("2006", "%Y"), ("002", "%j"),
    ("01", "%m"), ("02", "%d"), ("03", "%I"), ("04", "%M"), ("05", "%S"), ("06", "%y"), ("15", "%H"),
    ("PM", "%p"), ("pm", "%p"), ("1", "%m"), ("2", "%d"), ("3", "%I"), ("4", "%M"), ("5", "%S"),
]
# Elements our strptime-based parser cannot read: zones and fractions of a second.
_GO_UNSUPPORTED = re.compile(r"MST|Z07|-07|[.,](0+|9+)(?![0-9])|_2")


def go_layout_to_strptime(layout: str, column: str) -> str:
    unsupported = _GO_UNSUPPORTED.search(layout)
    if unsupported:
        raise MappingError(
            f"column {column!r}: the dateTime layout {layout!r} has {unsupported.group()!r} (a time zone or a "
            f"fraction of a second), which csv2lp cannot read from a layout; use dateTime:RFC3339Nano for such "
            f"times, or #timezone for the zone of times without one."
        )
    out: list[str] = []
    i = 0
    while i < len(layout):
        for element, directive in _GO_LAYOUT:
            if layout.startswith(element, i):
                out.append(directive)
                i += len(element)
                break
        else:
            out.append("%%" if layout[i] == "%" else layout[i])
            i += 1
    pattern = "".join(out)
    if "%" not in pattern.replace("%%", ""):
        raise MappingError(f"column {column!r}: dateTime layout {layout!r} holds no date or time element "
                           f"(Go layouts spell them as 2006-01-02 15:04:05).")
    return pattern


def time_format(datatype: str, fmt: str, column: str, timezone: str) -> TimeFormat:
    """The time format for a dateTime column (`dateTime`, `dateTime:RFC3339`, `dateTime:number`, a layout)."""
    if datatype not in ("dateTime", ""):
        raise MappingError(f"column {column!r} is the time column but has datatype {datatype!r}; "
                           f"give it a dateTime datatype (dateTime:RFC3339, dateTime:number, ...).")
    if fmt in ("RFC3339", "RFC3339Nano"):
        return TimeFormat("rfc3339")
    if fmt == "number":
        return TimeFormat("epoch_ns", _without_plus)
    if fmt == "":
        # pkg/csv2lp reads each cell as nanoseconds when it is an integer, else as RFC 3339.
        return TimeFormat("epoch_ns", lambda raw: _epoch_or_rfc3339(raw, timezone))
    return TimeFormat(go_layout_to_strptime(fmt, column))


def _without_plus(raw: pa.Array) -> pa.Array:
    return _rewrite_where(raw, r"^\+", lambda a: pc.replace_substring_regex(a, r"^\+", ""))


def _epoch_or_rfc3339(raw: pa.Array, timezone: str) -> pa.Array:
    """Cells that are not integers -> their RFC 3339 time as integer nanoseconds (text); cells
    that do not parse either are kept, and the epoch parser rejects their rows."""
    raw = _without_plus(raw)
    integer = has_match(raw, r"^-?[0-9]+$")
    if not _any(pc.and_(pc.is_valid(raw), pc.invert(integer))):
        return raw
    others = pc.if_else(integer, BINARY_NULL, raw)
    ns = parse_times(others, fmt="rfc3339", timezone=timezone, precision=Precision.NS).values
    as_text = ns.cast(pa.string()).cast(pa.binary())
    return pc.if_else(integer, raw, pc.coalesce(as_text, others))


def parse_timezone(value: str) -> str:
    """A #timezone value (`+0100`, `-0530`, `Local`, `Europe/Berlin`, empty) -> a zone our parser takes."""
    if value == "":
        return "UTC"
    if value.lower() == "local":
        return _local_zone()
    if value[0] in "+-":
        if not re.fullmatch(r"[+-][0-9]{4}", value):
            raise MappingError(f"#timezone {value!r}: an offset is written +hhmm or -hhmm (for example -0500).")
        return f"{value[:3]}:{value[3:]}"
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise MappingError(f"#timezone {value!r} is not a time zone name (for example Europe/Berlin) "
                           f"nor an offset (+hhmm).") from None
    return value


def _local_zone() -> str:
    """The zone Go's time.Local stands for: $TZ, else /etc/localtime, else UTC."""
    tz = os.environ.get("TZ")
    if tz is not None:
        return tz.lstrip(":") or "UTC"
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return "UTC"
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else "UTC"
