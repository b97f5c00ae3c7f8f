"""Line-protocol escaping: names once (scalar), values by the column (vectorized).

The rules (docs-v2 line-protocol reference; grammar in influxdata/line-protocol):
- measurement: backslash before `,` and space;
- tag keys, tag values, field keys: backslash before `,`, `=` and space;
- string field values: backslash before `"` and `\\`, the whole value in double quotes.
Nothing else is escaped, so a backslash in a name stays as it is. That makes two shapes
ambiguous between parsers: a backslash at the very end of a name (it would escape the
separator that follows) and a backslash right before a character we escape (InfluxDB 1.x
reads `\\,` as an escaped backslash followed by a separator, the v2 parser as a literal
backslash and an escaped comma). Such names are refused, never guessed at.
Control characters (0x00-0x1F, 0x7F) are not allowed in names and tag values at all, and a
line break would end the line inside a string field.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_buffers import byte_table, cell_bytes
from .errors import MappingError

CONTROL_CHARS = r"[\x00-\x1f\x7f]"
LINE_BREAKS = r"[\r\n]"
# A backslash before a character that the element escapes, or at the end.
AMBIGUOUS_BACKSLASH_IN_KEY = r"\\([,= ]|$)"
AMBIGUOUS_BACKSLASH_IN_MEASUREMENT = r"\\([, ]|$)"


# Patterns that are a class of ASCII bytes: in UTF-8 no other character holds such a byte,
# so a scan of the data buffer tells whether any value matches, far cheaper than the regex.
_ASCII_CLASSES = {CONTROL_CHARS: byte_table(bytes(range(0x20)) + b"\x7f"), LINE_BREAKS: byte_table(b"\r\n")}

_KEY_ESCAPES = (",", "=", " ")
_MEASUREMENT_ESCAPES = (",", " ")


def _escape_scalar(text: str, specials: tuple[str, ...]) -> str:
    for char in specials:
        text = text.replace(char, "\\" + char)
    return text


def _check_name(name: str, what: str, ambiguous: str) -> None:
    if name == "":
        raise MappingError(f"{what} is empty; line protocol needs a name here.")
    if re.search(CONTROL_CHARS, name):
        raise MappingError(f"{what} {name!r} contains a control character, which line protocol does not allow; rename it.")
    if re.search(ambiguous, name):
        raise MappingError(
            f"{what} {name!r} has a backslash at its end or before ',', '=' or a space, which parsers "
            f"read differently; rename it."
        )


def measurement_name(name: str, *, what: str) -> str:
    """Escaped constant measurement name, or MappingError saying why it cannot be written."""
    _check_name(name, f"{what} (measurement)", AMBIGUOUS_BACKSLASH_IN_MEASUREMENT)
    if name.startswith("#"):
        raise MappingError(f"{what} (measurement) {name!r} starts with '#', which makes the line a comment; rename it.")
    return _escape_scalar(name, _MEASUREMENT_ESCAPES)


def key_name(key: str, *, what: str) -> str:
    """Escaped tag or field key, or MappingError saying why it cannot be written."""
    _check_name(key, what, AMBIGUOUS_BACKSLASH_IN_KEY)
    return _escape_scalar(key, _KEY_ESCAPES)


def string_field_scalar(value: str) -> str:
    """The quoted form of one string field value (used for names of constants and in tests)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------- vectorized, on pa.StringArray


def _replace_all(values: pa.Array, specials: tuple[str, ...]) -> pa.Array:
    for char in specials:
        values = pc.replace_substring(values, char, "\\" + char)
    return values


def tag_values(values: pa.Array) -> pa.Array:
    """Escape tag values (or a dictionary of them): `,` `=` and space."""
    return _replace_all(values, _KEY_ESCAPES)


def measurement_values(values: pa.Array) -> pa.Array:
    return _replace_all(values, _MEASUREMENT_ESCAPES)


def string_field_values(values: pa.Array) -> pa.Array:
    """Escape string field values: backslash first, then the double quote."""
    return pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')


def has_match(values: pa.Array, pattern: str) -> pa.Array:
    """Boolean mask, false for nulls (so it can be combined without null handling)."""
    byte_class = _ASCII_CLASSES.get(pattern)
    if byte_class is not None:
        if not byte_class[cell_bytes(values)].any():
            return pa.array(np.zeros(len(values), dtype=bool))
    return pc.fill_null(pc.match_substring_regex(values, pattern), False)


def replace_matches(values: pa.Array, pattern: str, replacement: str = " ") -> pa.Array:
    return pc.replace_substring_regex(values, pattern, replacement)
