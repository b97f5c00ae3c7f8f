"""Line-protocol escaping of values, by the column (vectorized); names are checked and escaped
once per mapping, in mapping/names.py, whose docstring states the rules both follow: which
characters take a backslash where, which names are refused as ambiguous, and why control
characters are kept out of names and tag values but stored in string fields as they are.
"""

from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrow_buffers import byte_table, cell_bytes
from ..mapping.names import CONTROL_CHARS, KEY_ESCAPES, LINE_BREAKS, MEASUREMENT_ESCAPES

# Bytes without which no value can match the pattern: a scan of the data buffer (one table
# lookup per byte) tells that no value matches, far cheaper than the regex. In UTF-8 an ASCII
# byte is always its own character; C1 characters are 0xC2 0x80-0x9F and U+2028/U+2029 are
# 0xE2 0x80 0xA8/0xA9, so a 0xC2 or 0xE2 (also the lead byte of common letters and of the
# euro sign) makes `_holds_control` look at the bytes after it before the regex runs.
_C2, _E2 = 0xC2, 0xE2
_PREFILTERS = {CONTROL_CHARS: byte_table(bytes(range(0x20)) + b"\x7f" + bytes([_C2, _E2])),
               LINE_BREAKS: byte_table(b"\r\n")}

# ---------------------------------------------------------------- vectorized, on pa.StringArray


def _replace_all(values: pa.Array, specials: tuple[str, ...]) -> pa.Array:
    for char in specials:
        values = pc.replace_substring(values, char, "\\" + char)
    return values


def tag_values(values: pa.Array) -> pa.Array:
    """Escape tag values (or a dictionary of them): `,` `=` and space."""
    return _replace_all(values, KEY_ESCAPES)


def measurement_values(values: pa.Array) -> pa.Array:
    return _replace_all(values, MEASUREMENT_ESCAPES)


def string_field_values(values: pa.Array) -> pa.Array:
    """Escape string field values: backslash first, then the double quote."""
    return pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')


def has_match(values: pa.Array, pattern: str) -> pa.Array:
    """Boolean mask, false for nulls (so it can be combined without null handling)."""
    prefilter = _PREFILTERS.get(pattern)
    if prefilter is not None:
        data = cell_bytes(values)
        marked = prefilter[data]
        if not marked.any() or (pattern == CONTROL_CHARS and not _holds_control(data, marked)):
            return pa.array(np.zeros(len(values), dtype=bool))
    return pc.fill_null(pc.match_substring_regex(values, pattern), False)


def _holds_control(data: np.ndarray, marked: np.ndarray) -> bool:
    """Whether the bytes hold a character of CONTROL_CHARS, given the bytes its prefilter marked:
    an ASCII one, or a 0xC2 / 0xE2 that starts a C1 character or U+2028/U+2029."""
    at = np.flatnonzero(marked)
    lead = data[at]
    if ((lead != _C2) & (lead != _E2)).any():
        return True
    padded = np.concatenate((data, np.zeros(2, dtype=np.uint8)))  # a lead byte at the very end
    second, third = padded[at + 1], padded[at + 2]
    c1 = (lead == _C2) & (second >= 0x80) & (second <= 0x9F)
    separator = (lead == _E2) & (second == 0x80) & ((third == 0xA8) | (third == 0xA9))
    return bool((c1 | separator).any())


def replace_matches(values: pa.Array, pattern: str, replacement: str = " ") -> pa.Array:
    return pc.replace_substring_regex(values, pattern, replacement)
