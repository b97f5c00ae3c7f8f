"""What a mapping says: the types, the enums and the dataclasses of a MappingSpec and of its Plan.

A `MappingSpec` is what the user asked for (preset, TOML file, flags); a `Plan` is what
`resolve.resolve()` made of it for one CSV header: column positions and escaped names.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Mapping

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
