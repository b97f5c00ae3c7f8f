"""Line-protocol names, checked and escaped once per mapping: measurement, tag and field keys.

The rules (docs-v2 line-protocol reference; grammar in influxdata/line-protocol):
- measurement: backslash before `,` and space;
- tag keys, tag values, field keys: backslash before `,`, `=` and space;
- string field values: backslash before `"` and `\\`, the whole value in double quotes.
Nothing else is escaped, so a backslash in a name stays as it is. That makes two shapes
ambiguous between parsers: a backslash at the very end of a name (it would escape the
separator that follows) and a backslash right before a character we escape (InfluxDB 1.x
reads `\\,` as an escaped backslash followed by a separator, the v2 parser as a literal
backslash and an escaped comma). Such names are refused, never guessed at.
Control characters are not allowed in names and tag values at all: the C0 set (0x00-0x1F),
DEL, the C1 set (U+0080-U+009F) and the line and paragraph separators U+2028/U+2029 (Unicode
line breaks: consumers that split text into lines with Unicode's rules, Python's
`str.splitlines` among them, cut a line there). A line break (CR, LF) would end the line
inside a string field; every other character, control characters included, is stored in a
string field as it is (InfluxDB 1.6.7 stores tab, NUL, DEL, U+0085 and U+2028 in a string
field exactly: tests/test_hostile_values.py).
"""

from __future__ import annotations

import re

from ..errors import MappingError

# The same pattern for Arrow's RE2 and Python's re: escapes for the code points below U+00A0, the
# two separators as themselves (RE2 has no \\u escape, Python's re no \\x{...}).
CONTROL_CHARS = r"[\x00-\x1f\x7f-\x9f" + "\u2028\u2029" + "]"
LINE_BREAKS = r"[\r\n]"
# A backslash before a character that the element escapes, or at the end.
AMBIGUOUS_BACKSLASH_IN_KEY = r"\\([,= ]|$)"
AMBIGUOUS_BACKSLASH_IN_MEASUREMENT = r"\\([, ]|$)"



# Keys InfluxDB does not store as given, with why (a clause after "which"). Seen on InfluxDB
# 1.6.7 and 2.8.0 (tests/test_hostile_values.py): a tag or field `time` is refused (1.x: 400
# "invalid tag key" / "invalid field name"; 2.x: "cannot use reserved tag key", 422), and a
# `time` field beside other fields is dropped without a word by both. InfluxDB 2 refuses the
# tag keys `_measurement` and `_field` (400 "cannot use reserved tag key"), stores `_value` and
# `_time` but then fails every Flux query of the measurement (500, "interface conversion"), and
# stores `_start` and `_stop` but Flux shows the query's range there, the tag's value lost. As
# field keys, `_measurement`, `_field` and the others are stored and read back as they are.
_TIME_REFUSED = "InfluxDB refuses as a tag or field key (it names a point's timestamp)"
RESERVED_TAG_KEYS = {
    "time": _TIME_REFUSED,
    "_measurement": "InfluxDB 2 refuses as a tag key (Flux's name for the measurement)",
    "_field": "InfluxDB 2 refuses as a tag key (Flux's name for the field key)",
    "_value": "InfluxDB 2 stores, but then fails every Flux query of the measurement",
    "_time": "InfluxDB 2 stores, but then fails every Flux query of the measurement",
    "_start": "InfluxDB 2 stores, but Flux shows the query's start there instead of the tag",
    "_stop": "InfluxDB 2 stores, but Flux shows the query's stop there instead of the tag",
}
RESERVED_FIELD_KEYS = {"time": _TIME_REFUSED}

KEY_ESCAPES = (",", "=", " ")
MEASUREMENT_ESCAPES = (",", " ")


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
    return _escape_scalar(name, MEASUREMENT_ESCAPES)


def key_name(key: str, *, what: str) -> str:
    """Escaped tag or field key, or MappingError saying why it cannot be written."""
    _check_name(key, what, AMBIGUOUS_BACKSLASH_IN_KEY)
    return _escape_scalar(key, KEY_ESCAPES)


def string_field_scalar(value: str) -> str:
    """The quoted form of one string field value (used for names of constants and in tests)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
