"""A tiny per-row line-protocol encoder, written from the spec, to check the vectorized one.

Deliberately naive: plain Python, one row at a time, no Arrow. It returns the line, or the
reason text the row must be rejected with.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from dataclasses import dataclass

LP_MIN_NS = -9_223_372_036_854_775_806
LP_MAX_NS = 9_223_372_036_854_775_806
# C0, DEL, C1 and the Unicode line and paragraph separators: not in names and tag values.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_KEY_BYTES = 65_535  # series key + "#!~#" + field key, as written
MAX_STRING_BYTES = 64 * 1024


@dataclass(frozen=True)
class Column:
    name: str
    role: str  # "tag" | "float" | "integer" | "string" | "boolean"


def _esc(text: str, specials: str) -> str:
    return "".join("\\" + c if c in specials else c for c in text)


def _bad_backslash(text: str, specials: str) -> bool:
    return text.endswith("\\") or any(text[i] == "\\" and text[i + 1] in specials for i in range(len(text) - 1))


def _key_end(field: str) -> int:
    """Where a written field's key ends: at its first '=' that no backslash escapes."""
    i = 0
    while field[i] != "=":
        i += 2 if field[i] == "\\" else 1
    return i


def shortest_float(value: float) -> str:
    """Shortest round-trip digits (Python's repr finds them), spelled the way Arrow spells them:
    plain notation for decimal exponents -7 < E < 10, else `d.ddde+E` / `d.ddde-E`."""
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exp = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    sci = len(digits) + exp - 1
    if -7 < sci < 10:
        if exp >= 0:
            body = digits + "0" * exp
        elif len(digits) > -exp:
            body = digits[: len(digits) + exp] + "." + digits[len(digits) + exp:]
        else:
            body = "0." + "0" * (-exp - len(digits)) + digits
    else:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "") + f"e{'+' if sci >= 0 else '-'}{abs(sci)}"
    return ("-" if sign else "") + body


def encode_row(measurement: str, columns: list[Column], cells: list[str], time_ns: int | None,
               ns_per_unit: int = 1) -> tuple[str | None, str | None, int]:
    """(line, None, NaN/Inf values left out) or (None, reason, 0). Empty cells are missing values.
    The line's time is in units of `ns_per_unit` nanoseconds (floored), and must be a time the
    server can multiply back into line protocol's nanosecond range."""
    tags: list[tuple[str, str]] = []
    fields: list[str] = []
    dropped = 0
    for column, cell in zip(columns, cells):
        if cell == "":
            continue
        key = _esc(column.name, ",= ")
        if column.role == "tag":
            if CONTROL.search(cell):
                return None, f"control character in tag column {column.name!r}", 0
            if _bad_backslash(cell, ",= "):
                return None, f"backslash at the end or before ',', '=' or space in tag column {column.name!r}", 0
            tags.append((column.name, f"{key}={_esc(cell, ',= ')}"))
        elif column.role == "float":
            value = float(cell)
            if math.isnan(value) or math.isinf(value):
                dropped += 1
                continue
            fields.append(f"{key}={shortest_float(value)}")
        elif column.role == "integer":
            fields.append(f"{key}={int(cell)}i")
        elif column.role == "boolean":
            fields.append(f"{key}={'true' if cell.lower() in ('true', 't', 'yes', 'y', '1') else 'false'}")
        elif column.role == "string":
            if len(cell.encode()) > MAX_STRING_BYTES:
                return None, f"string over {MAX_STRING_BYTES:,} bytes in column {column.name!r}", 0
            if "\n" in cell or "\r" in cell:
                return None, f"line break in string column {column.name!r}", 0
            fields.append(f'{key}="' + cell.replace("\\", "\\\\").replace('"', '\\"') + '"')
    stamp = None if time_ns is None else time_ns // ns_per_unit
    if stamp is not None and not (LP_MIN_NS <= stamp * ns_per_unit and time_ns <= LP_MAX_NS):
        return None, "out of range time in column 'time'", 0
    if not fields:
        return None, "no field: every field cell is empty, NaN or infinite", 0
    tags.sort(key=lambda kv: kv[0].encode())
    series = _esc(measurement, ", ") + "".join("," + t for _, t in tags)
    longest_key = max(len(field[: _key_end(field)].encode()) for field in fields)
    if len(series.encode()) + len("#!~#") + longest_key > MAX_KEY_BYTES:
        return None, "series key too long: measurement, tags and field key over 65,535 bytes", 0
    line = series + " " + ",".join(fields) + ("" if stamp is None else f" {stamp}")
    return line, None, dropped
