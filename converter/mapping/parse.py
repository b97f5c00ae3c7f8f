"""A MappingSpec from text: TOML mapping files, the shipped presets, and the -t/-f/--type flags."""

from __future__ import annotations

import sys
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from ..errors import MappingError
from .settings_file import read_settings_text
from .spec import FieldSpec, FieldType, KeyStyle, MappingSpec, OtherColumns, TagSpec, TimeSpec
from .time_settings import check_time_format, check_timezone

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

def load_preset(name: str) -> MappingSpec:
    """A named mapping shipped in converter/presets/NAME.toml."""
    available = sorted(p.name[:-5] for p in resources.files("converter.presets").iterdir() if p.name.endswith(".toml"))
    if name not in available:
        raise MappingError(f"no preset named {name!r}; available presets: {', '.join(available)}.")
    text = resources.files("converter.presets").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return parse_mapping_toml(text, source=f"preset {name!r}")


def load_mapping_file(path: str | Path) -> MappingSpec:
    try:
        text = read_settings_text(path)
    except OSError as exc:
        raise MappingError(f"cannot read mapping file {path}: {exc.strerror or exc}.") from exc
    return parse_mapping_toml(text, source=str(path))


_TOP_KEYS = {"measurement", "measurement_column", "other_columns", "exclude", "key_style", "time", "tags", "fields", "types"}


def parse_mapping_toml(text: str, *, source: str) -> MappingSpec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{source}: not valid TOML: {exc}.") from exc
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise MappingError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}; known keys: {', '.join(sorted(_TOP_KEYS))}.")
    _check_types(data, source)
    time_data = data.get("time", {})
    spec = MappingSpec(
        measurement=data.get("measurement"),
        measurement_column=data.get("measurement_column"),
        tags=tuple(_tag_entry(k, v, source) for k, v in data.get("tags", {}).items()),
        fields=tuple(_field_entry(k, v, source) for k, v in data.get("fields", {}).items()),
        other_columns=_enum(OtherColumns, data.get("other_columns", "fields"), "other_columns", source),
        exclude=tuple(data.get("exclude", [])),
        column_types={c: _enum(FieldType, t, f"types.{c}", source) for c, t in data.get("types", {}).items()},
        key_style=_enum(KeyStyle, data.get("key_style", "as-is"), "key_style", source),
        time=TimeSpec(
            column=time_data.get("column"),
            format=time_data.get("format", "iso8601"),
            timezone=time_data.get("timezone", "UTC"),
        ),
    )
    check_time_format(spec.time.format, where=f"{source}: [time] format =")
    check_timezone(spec.time.timezone, where=f"{source}: [time] timezone =")
    return spec


# The type each key must have (a table's entries are checked where they are read).
_KEY_TYPES: dict[str, type] = {"measurement": str, "measurement_column": str, "other_columns": str, "exclude": list,
                               "key_style": str, "time": dict, "tags": dict, "fields": dict, "types": dict}
_TIME_KEYS = {"column": str, "format": str, "timezone": str}
_TYPE_NAMES = {str: "a string", list: "a list of column names", dict: "a table"}


def _check_types(data: Mapping[str, Any], source: str) -> None:
    """Each key of the right TOML type, so that a wrong one is named instead of failing somewhere later."""
    for key, kind in _KEY_TYPES.items():
        if key in data and not isinstance(data[key], kind):
            raise MappingError(f"{source}: {key} = {data[key]!r} must be {_TYPE_NAMES[kind]}.")
    if not all(isinstance(column, str) for column in data.get("exclude", [])):
        raise MappingError(f"{source}: exclude must be a list of column names (strings).")
    time_data = data.get("time", {})
    for key in time_data:
        if key not in _TIME_KEYS:
            raise MappingError(f"{source}: unknown key [time] {key}; known keys: {', '.join(_TIME_KEYS)}.")
        if not isinstance(time_data[key], _TIME_KEYS[key]):
            raise MappingError(f"{source}: [time] {key} = {time_data[key]!r} must be a string.")


def _enum(kind: type[Enum], value: Any, where: str, source: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(m.value for m in kind)  # type: ignore[attr-defined]
        raise MappingError(f"{source}: {where} = {value!r} is not one of {choices}.") from None


def _tag_entry(key: str, value: Any, source: str) -> TagSpec:
    if isinstance(value, str):
        return TagSpec(column=value, key=key)
    if isinstance(value, dict) and "column" in value:
        return TagSpec(column=value["column"], key=key, optional=bool(value.get("optional", False)))
    raise MappingError(f"{source}: tags.{key} must be a column name or {{ column = \"...\" }}.")


def _field_entry(key: str, value: Any, source: str) -> FieldSpec:
    if isinstance(value, str):
        return FieldSpec(column=value, key=key)
    if isinstance(value, dict) and "column" in value:
        ftype = _enum(FieldType, value.get("type", "auto"), f"fields.{key}.type", source)
        return FieldSpec(column=value["column"], key=key, type=ftype, optional=bool(value.get("optional", False)))
    raise MappingError(f"{source}: fields.{key} must be a column name or {{ column = \"...\", type = \"...\" }}.")


# ---------------------------------------------------------------- flag syntax


def parse_tag_flag(text: str) -> TagSpec:
    """`--tag COLUMN` or `--tag KEY=COLUMN`."""
    key, sep, column = text.partition("=")
    return TagSpec(column=column, key=key) if sep else TagSpec(column=text)


def parse_field_flag(text: str) -> FieldSpec:
    """`--field COLUMN`, `--field KEY=COLUMN`, either with `:TYPE` (`--field event_id=event-id:integer`).

    Column names may contain ':' (`gps:hdop`), so the suffix is a type only if it names one.
    """
    body, colon, suffix = text.rpartition(":")
    ftype = FieldType.AUTO
    if colon and suffix in {t.value for t in FieldType}:
        ftype, text = FieldType(suffix), body
    key, sep, column = text.partition("=")
    return FieldSpec(column=column, key=key, type=ftype) if sep else FieldSpec(column=text, type=ftype)


def parse_type_flag(text: str) -> tuple[str, FieldType]:
    """`--type COLUMN=TYPE`."""
    column, sep, name = text.rpartition("=")
    if not sep or name not in {t.value for t in FieldType}:
        choices = ", ".join(t.value for t in FieldType)
        raise MappingError(f"--type {text!r}: expected COLUMN=TYPE with TYPE one of {choices}.")
    return column, FieldType(name)
