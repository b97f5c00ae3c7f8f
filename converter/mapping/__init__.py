"""Which CSV column becomes the measurement, a tag, a field (with its line-protocol type) or the time.

    preset, TOML file ──> parse.py ──┐
    -t / -f / --type flags ──────────┴──> spec.MappingSpec   what the user asked for
                                              │
    one CSV header ──> resolve.resolve() ─────┘──> spec.Plan  positions, types, escaped names
                          names.py          measurement and keys checked and escaped once
                          time_settings.py  time formats and zones tried before the first row

Everything is decided once per file, before any row is read, so that nothing about names
is decided per row. The names below are the package's interface; import them from here.
"""

from .names import RESERVED_FIELD_KEYS, RESERVED_TAG_KEYS, key_name, measurement_name
from .parse import (load_mapping_file, load_preset, parse_field_flag, parse_mapping_toml, parse_tag_flag,
                    parse_type_flag)
from .resolve import resolve, snake_case
from .settings_file import SETTINGS_FILE_LIMIT, read_settings_text
from .spec import (EPOCH_UNITS, ISO_FORMATS, NO_TIME, TIME_COLUMN_GUESSES, FieldSpec, FieldType, KeyStyle,
                   MappingOverrides, MappingSpec, OtherColumns, Plan, Precision, ResolvedField, ResolvedTag,
                   ResolvedTime, TagSpec, TimeSpec)
from .time_settings import TIME_FORMAT_FIX, TIMEZONE_FIX, check_time_format, check_timezone

__all__ = [
    "EPOCH_UNITS", "ISO_FORMATS", "NO_TIME", "RESERVED_FIELD_KEYS", "RESERVED_TAG_KEYS", "TIME_COLUMN_GUESSES",
    "TIME_FORMAT_FIX", "TIMEZONE_FIX", "FieldSpec", "FieldType", "KeyStyle", "MappingOverrides", "MappingSpec",
    "OtherColumns", "Plan", "Precision", "ResolvedField", "ResolvedTag", "ResolvedTime", "TagSpec", "TimeSpec",
    "check_time_format", "check_timezone", "key_name", "load_mapping_file", "load_preset", "measurement_name",
    "parse_field_flag", "parse_mapping_toml", "parse_tag_flag", "parse_type_flag", "read_settings_text", "resolve",
    "snake_case", "SETTINGS_FILE_LIMIT",
]
