"""A MappingSpec checked against one CSV header, once, before any row is read: the file's Plan.

Every name is escaped and every position fixed here, so that nothing about names is
decided per row.
"""

from __future__ import annotations

import difflib
import re
from typing import Mapping, Sequence

from ..errors import MappingError
from . import names
from .spec import (FieldSpec, FieldType, KeyStyle, MappingSpec, NO_TIME, OtherColumns, Plan, ResolvedField, ResolvedTag, ResolvedTime, TIME_COLUMN_GUESSES, TagSpec, TimeSpec)
from .time_settings import check_time_format

def snake_case(name: str) -> str:
    """`ground-speed` -> `ground_speed`, `ECMWF ERA5 SL Wind (10 m above Ground U Component)`
    -> `ecmwf_era5_sl_wind_10_m_above_ground_u_component`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _derive_key(column: str, style: KeyStyle) -> str:
    return snake_case(column) if style is KeyStyle.SNAKE_CASE else column


# Delimiters a header read with the wrong one is most often split by instead, and how -d spells them.
_OTHER_DELIMITERS = {";": "';'", "\t": "tab", "|": "'|'", ",": "','"}


def delimiter_hint(header: Sequence[str], column: str | None = None) -> str:
    """' The header looks ';'-separated: give -d ';'.' when a cell of `header` splits by another
    delimiter into several names (`column` among them, when given): the file was read with the
    wrong -d. Empty otherwise."""
    for delimiter, spelt in _OTHER_DELIMITERS.items():
        for cell in header:
            parts = [part.strip().strip('"') for part in cell.split(delimiter)]
            if len(parts) > 1 and (column in parts if column is not None else all(parts)):
                shown = "tab" if delimiter == "\t" else repr(delimiter)
                return f" The header looks {shown}-separated: give -d {spelt}."
    return ""


def _missing_column(column: str, role: str, header: Sequence[str], source: str) -> MappingError:
    close = difflib.get_close_matches(column, header, n=1)
    hint = delimiter_hint(header, column) or (f" Did you mean {close[0]!r}?" if close else "")
    listed = ", ".join(repr(c) for c in header)
    return MappingError(
        f"{source}: column {column!r} ({role}) is not in the header.{hint} Columns: {listed}."
    )


def resolve(spec: MappingSpec, header: Sequence[str], *, source: str, default_measurement: str) -> Plan:
    """Check `spec` against `header` and fix every name, position and type up front."""
    header = tuple(header)
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        if name in positions:
            raise MappingError(
                f"{source}: the header names column {name!r} twice (columns {positions[name] + 1} and "
                f"{index + 1}); rename one of them in the header."
            )
        positions[name] = index

    def position(column: str, role: str) -> int:
        if column not in positions:
            raise _missing_column(column, role, header, source)
        return positions[column]

    used: dict[str, str] = {}  # column -> role, to catch one column in two roles

    def claim(column: str, role: str) -> None:
        if column in used:
            raise MappingError(f"{source}: column {column!r} is mapped twice ({used[column]} and {role}).")
        used[column] = role

    measurement: str | None = None
    measurement_index: int | None = None
    if spec.measurement_column is not None:
        measurement_index = position(spec.measurement_column, "measurement")
        claim(spec.measurement_column, "measurement")
    else:
        name = spec.measurement if spec.measurement is not None else default_measurement
        measurement = names.measurement_name(name, what="--measurement")

    time = _resolve_time(spec.time, positions, header, source)
    if time is not None:
        claim(time.column, "time")

    keys: dict[str, str] = {}

    def claim_key(key: str, role: str) -> None:
        if key in keys:
            raise MappingError(
                f"{source}: key {key!r} is produced twice ({keys[key]} and {role}); give one of them "
                f"another key (KEY=COLUMN) or --exclude one column."
            )
        kind = role.split(" ")[0]  # "tag" or "field"
        reserved = names.RESERVED_TAG_KEYS if kind == "tag" else names.RESERVED_FIELD_KEYS
        if key in reserved:
            column = role.split(" ")[-1].strip("'")
            raise MappingError(
                f"{source}: {role} would get the key {key!r}, which {reserved[key]}; give it another key, "
                f"e.g. --{kind} {key.strip('_')}_{kind}={column}."
            )
        keys[key] = role

    def place(item: TagSpec | FieldSpec, role: str) -> tuple[int, str, str] | None:
        """Position, key and escaped key of a named tag or field column (None: optional and absent)."""
        if item.optional and item.column not in positions:
            return None
        index = position(item.column, role)
        claim(item.column, role)
        key = item.key or _derive_key(item.column, spec.key_style)
        claim_key(key, f"{role} column {item.column!r}")
        return index, key, names.key_name(key, what=f"{source}: {role} key")

    tags: list[ResolvedTag] = []
    for tag in spec.tags:
        if (placed := place(tag, "tag")) is not None:
            tags.append(ResolvedTag(tag.column, *placed))

    fields: list[ResolvedField] = []
    for fld in spec.fields:
        if (placed := place(fld, "field")) is not None:
            ftype = fld.type if fld.type is not FieldType.AUTO else spec.column_types.get(fld.column, FieldType.AUTO)
            fields.append(ResolvedField(fld.column, *placed, ftype))

    for column in spec.exclude:
        if column not in positions:
            raise _missing_column(column, "--exclude", header, source)
    if spec.other_columns is OtherColumns.FIELDS:
        for index, column in enumerate(header):
            if column in used or column in spec.exclude:
                continue
            if column == "":
                raise MappingError(
                    f"{source}: column {index + 1} has no name in the header; name it, or map only "
                    f"the columns you want with --other-columns ignore."
                )
            key = _derive_key(column, spec.key_style)
            if key == "":
                raise MappingError(f"{source}: column {column!r} gives an empty key; give it one with --field KEY={column}.")
            claim_key(key, f"field column {column!r}")
            ftype = spec.column_types.get(column, FieldType.AUTO)
            fields.append(ResolvedField(column, index, key, names.key_name(key, what=f"{source}: field key"), ftype))
    for column in spec.checked_type_columns:
        if column not in positions:
            raise _missing_column(column, "--type", header, source)

    if not fields:
        raise MappingError(f"{source}: the mapping gives no field; line protocol needs at least one (see --field).")

    tags.sort(key=lambda t: t.key.encode())
    return Plan(header, measurement, measurement_index, tuple(tags), tuple(fields), time)


def _resolve_time(spec: TimeSpec, positions: Mapping[str, int], header: Sequence[str], source: str) -> ResolvedTime | None:
    column = spec.column
    if column == NO_TIME:
        return None
    if column is None:
        lowered = {name.lower(): name for name in header}
        column = next((lowered[g] for g in TIME_COLUMN_GUESSES if g in lowered), None)
        if column is None:
            return None
    if column not in positions:
        raise _missing_column(column, "time", header, source)
    check_time_format(spec.format)
    return ResolvedTime(column, positions[column], spec.format, spec.timezone)
