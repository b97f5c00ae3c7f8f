"""Which CSV column becomes the measurement, a tag, a field (with its line-protocol type) or the time.

A `MappingSpec` is what the user asked for (preset, TOML file, flags). `resolve()` checks it
against one CSV header, once, before any row is read, and returns a `Plan` with column
positions and escaped names, so that nothing about names is decided per row.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, field, replace
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

from .encode import escape
from .errors import MappingError
from .time_settings import strptime_problem, timezone_problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


class FieldType(str, Enum):
    """A field's line-protocol type; AUTO decides once per column from its first values."""

    FLOAT = "float"
    INTEGER = "integer"
    UNSIGNED = "unsigned"
    STRING = "string"
    BOOLEAN = "boolean"
    AUTO = "auto"


class Precision(str, Enum):
    """Timestamp precision, the same words as `influx write --precision`."""

    NS = "ns"
    US = "us"
    MS = "ms"
    S = "s"

    @property
    def ns_per_unit(self) -> int:
        return {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}[self.value]


class OtherColumns(str, Enum):
    """What happens to columns the mapping does not name."""

    FIELDS = "fields"
    IGNORE = "ignore"


class KeyStyle(str, Enum):
    """How keys are derived from column names that have no explicit key."""

    AS_IS = "as-is"
    SNAKE_CASE = "snake_case"


# Time formats with a name; anything containing "%" is a strptime pattern instead.
EPOCH_UNITS = {"epoch_s": 1_000_000_000, "epoch_ms": 1_000_000, "epoch_us": 1_000, "epoch_ns": 1}
ISO_FORMATS = ("iso8601", "rfc3339", "movebank")
TIME_COLUMN_GUESSES = ("time", "timestamp", "_time", "datetime", "date_time")


@dataclass(frozen=True)
class TagSpec:
    column: str
    key: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class FieldSpec:
    column: str
    key: str | None = None
    type: FieldType = FieldType.AUTO
    optional: bool = False


@dataclass(frozen=True)
class TimeSpec:
    """column=None means "guess from the header"; NO_TIME means "let the server stamp the points"."""

    column: str | None = None
    format: str = "iso8601"
    timezone: str = "UTC"


NO_TIME = ""


@dataclass(frozen=True)
class MappingSpec:
    measurement: str | None = None
    measurement_column: str | None = None
    tags: tuple[TagSpec, ...] = ()
    fields: tuple[FieldSpec, ...] = ()
    other_columns: OtherColumns = OtherColumns.FIELDS
    exclude: tuple[str, ...] = ()  # tuples, not sets: errors name the first one given
    column_types: Mapping[str, FieldType] = field(default_factory=dict)
    key_style: KeyStyle = KeyStyle.AS_IS
    time: TimeSpec = TimeSpec()
    # Columns whose type came from a --type flag: those must exist. Types in a preset or
    # TOML file may name columns that a given export lacks.
    checked_type_columns: tuple[str, ...] = ()

    def overridden_by(self, other: "MappingOverrides") -> "MappingSpec":
        """Flags on the command line win over the preset or TOML file they are combined with."""
        spec = self
        if other.measurement is not None:
            spec = replace(spec, measurement=other.measurement, measurement_column=None)
        if other.measurement_column is not None:
            spec = replace(spec, measurement_column=other.measurement_column, measurement=None)
        # A column named on the command line takes the role given there, whatever the preset
        # or file said: `--preset movebank --field event-id` moves event-id from tags to fields.
        named = {t.column for t in other.tags} | {f.column for f in other.fields}
        if named:
            spec = replace(
                spec,
                tags=tuple(t for t in spec.tags if t.column not in named) + other.tags,
                fields=tuple(f for f in spec.fields if f.column not in named) + other.fields,
            )
        if other.other_columns is not None:
            spec = replace(spec, other_columns=other.other_columns)
        if other.exclude:
            spec = replace(spec, exclude=spec.exclude + tuple(c for c in other.exclude if c not in spec.exclude))
        if other.column_types:
            spec = replace(
                spec,
                column_types={**spec.column_types, **other.column_types},
                checked_type_columns=spec.checked_type_columns + tuple(other.column_types),
            )
        if other.key_style is not None:
            spec = replace(spec, key_style=other.key_style)
        time = spec.time
        if other.time_column is not None:
            time = replace(time, column=other.time_column)
        if other.time_format is not None:
            time = replace(time, format=other.time_format)
        if other.timezone is not None:
            time = replace(time, timezone=other.timezone)
        return replace(spec, time=time)


@dataclass(frozen=True)
class MappingOverrides:
    """The mapping flags of the CLI; None means "not given"."""

    measurement: str | None = None
    measurement_column: str | None = None
    tags: tuple[TagSpec, ...] = ()
    fields: tuple[FieldSpec, ...] = ()
    other_columns: OtherColumns | None = None
    exclude: tuple[str, ...] = ()
    column_types: Mapping[str, FieldType] = field(default_factory=dict)
    key_style: KeyStyle | None = None
    time_column: str | None = None
    time_format: str | None = None
    timezone: str | None = None


# ---------------------------------------------------------------- resolved against a header


@dataclass(frozen=True)
class ResolvedTag:
    column: str
    index: int
    key: str
    escaped_key: str


@dataclass(frozen=True)
class ResolvedField:
    column: str
    index: int
    key: str
    escaped_key: str
    type: FieldType


@dataclass(frozen=True)
class ResolvedTime:
    column: str
    index: int
    format: str
    timezone: str


@dataclass(frozen=True)
class Plan:
    """A mapping checked against one header: positions, escaped names, tags sorted by key."""

    header: tuple[str, ...]
    measurement: str | None  # escaped constant, or None when measurement_index is set
    measurement_index: int | None
    tags: tuple[ResolvedTag, ...]
    fields: tuple[ResolvedField, ...]
    time: ResolvedTime | None
    # Columns that reach no line by a rule the user did not write (annotated CSV's layout rules),
    # with the reason: a value in one of them is named in a warning (pipeline.py). Columns left out
    # on request (--exclude, --other-columns ignore, the datatype `ignored`) are not listed.
    unwritten: tuple[tuple[int, str], ...] = ()

    def field_by_key(self, key: str) -> ResolvedField | None:
        return next((f for f in self.fields if f.key == key), None)


def snake_case(name: str) -> str:
    """`ground-speed` -> `ground_speed`, `ECMWF ERA5 SL Wind (10 m above Ground U Component)`
    -> `ecmwf_era5_sl_wind_10_m_above_ground_u_component`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _derive_key(column: str, style: KeyStyle) -> str:
    return snake_case(column) if style is KeyStyle.SNAKE_CASE else column


def _missing_column(column: str, role: str, header: Sequence[str], source: str) -> MappingError:
    close = difflib.get_close_matches(column, header, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
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
        measurement = escape.measurement_name(name, what="--measurement")

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
        reserved = escape.RESERVED_TAG_KEYS if kind == "tag" else escape.RESERVED_FIELD_KEYS
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
        return index, key, escape.key_name(key, what=f"{source}: {role} key")

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
            fields.append(ResolvedField(column, index, key, escape.key_name(key, what=f"{source}: field key"), ftype))
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


TIME_FORMAT_FIX = (f"use one of {', '.join(ISO_FORMATS + tuple(EPOCH_UNITS))} or a strptime pattern such as "
                   f"'%d/%m/%Y %H:%M:%S'")
TIMEZONE_FIX = "use an IANA name such as Europe/Berlin or America/New_York, an offset such as +02:00, or UTC"


def check_time_format(fmt: str, *, where: str = "time format") -> None:
    """A named format, or a strptime pattern that can read a time (time_settings.py). `where` names
    the setting in the message: `time format`, `gps.toml: [time] format`."""
    if fmt in ISO_FORMATS or fmt in EPOCH_UNITS:
        return
    problem = strptime_problem(fmt) if "%" in fmt else "is not known"
    if problem is not None:
        raise MappingError(f"{where} {fmt!r} {problem}; {TIME_FORMAT_FIX}.")


def check_timezone(zone: str, *, where: str = "time zone") -> None:
    problem = timezone_problem(zone)
    if problem is not None:
        raise MappingError(f"{where} {zone!r} {problem}; {TIMEZONE_FIX}.")


# ---------------------------------------------------------------- TOML files and presets


def load_preset(name: str) -> MappingSpec:
    """A named mapping shipped in converter/presets/NAME.toml."""
    available = sorted(p.name[:-5] for p in resources.files("converter.presets").iterdir() if p.name.endswith(".toml"))
    if name not in available:
        raise MappingError(f"no preset named {name!r}; available presets: {', '.join(available)}.")
    text = resources.files("converter.presets").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return parse_mapping_toml(text, source=f"preset {name!r}")


def load_mapping_file(path: str | Path) -> MappingSpec:
    try:
        text = Path(path).read_text(encoding="utf-8")
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
