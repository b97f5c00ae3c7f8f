"""Telegraf's CSV parser options (`csv_header_row_count`, `csv_tag_columns`, ...) as a csv2lp mapping.

A Telegraf user brings their `[[inputs.file]]` settings unchanged: `load_telegraf_csv_options`
takes a bare table of `csv_*` keys or a whole Telegraf config and returns what csv2lp needs,
a `MappingSpec` (which column is what) and `ReadSettings` (where the header and the data are),
plus the delimiter and `csv_skip_errors`. Meanings follow Telegraf v1.39.3
(plugins/parsers/csv/parser.go); where csv2lp cannot do what Telegraf does, the option is
refused with the reason, never half-applied. One difference is deliberate: without
`csv_column_types` Telegraf guesses a type per value (a column can flip from integer to
float to string), csv2lp decides once per column.

Go reference layouts (`2006-01-02 15:04:05`) become csv2lp time formats in
`go_layout_to_time_format`: ISO 8601 shapes go to the iso8601 parser (which also reads
fractional seconds), anything else to a strptime pattern.
"""

from __future__ import annotations

import difflib
import sys
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import MappingError
from ..mapping import NO_TIME, FieldType, MappingSpec, TagSpec, TimeSpec, read_settings_text
from ..read.settings import DELIMITER_RULE, ReadSettings, delimiter_problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CSV_KEYS = (
    "csv_header_row_count", "csv_column_names", "csv_column_types", "csv_skip_rows", "csv_skip_columns",
    "csv_delimiter", "csv_comment", "csv_trim_space", "csv_tag_columns", "csv_tag_overwrite",
    "csv_measurement_column", "csv_timestamp_column", "csv_timestamp_format", "csv_timezone",
    "csv_skip_values", "csv_skip_errors", "csv_metadata_rows", "csv_metadata_separators",
    "csv_metadata_trim_set", "csv_reset_mode",
)
# [[inputs.file]] settings that do not change the points of one conversion.
IGNORED_INPUT_KEYS = frozenset({
    "files", "data_format", "interval", "alias", "collection_jitter", "collection_offset", "log_level",
    "startup_error_behavior", "character_encoding",
})
TELEGRAF_TYPES = {"int": FieldType.INTEGER, "float": FieldType.FLOAT, "bool": FieldType.BOOLEAN,
                  "string": FieldType.STRING}
UNIX_FORMATS = {"unix": "epoch_s", "unix_ms": "epoch_ms", "unix_us": "epoch_us", "unix_ns": "epoch_ns"}
# Telegraf's named layouts (internal.parseTime, matched case-insensitively) and Go's constants.
NAMED_LAYOUTS = {
    "ansic": "Mon Jan _2 15:04:05 2006",
    "unixdate": "Mon Jan _2 15:04:05 MST 2006",
    "rubydate": "Mon Jan 02 15:04:05 -0700 2006",
    "rfc822": "02 Jan 06 15:04 MST",
    "rfc822z": "02 Jan 06 15:04 -0700",
    "rfc850": "Monday, 02-Jan-06 15:04:05 MST",
    "rfc1123": "Mon, 02 Jan 2006 15:04:05 MST",
    "rfc1123z": "Mon, 02 Jan 2006 15:04:05 -0700",
    "rfc3339": "2006-01-02T15:04:05Z07:00",
    "rfc3339nano": "2006-01-02T15:04:05.999999999Z07:00",
    "stamp": "Jan _2 15:04:05",
    "stampmilli": "Jan _2 15:04:05.000",
    "stampmicro": "Jan _2 15:04:05.000000",
    "stampnano": "Jan _2 15:04:05.000000000",
}


@dataclass(frozen=True)
class TelegrafCsvConfig:
    """What a Telegraf CSV config asks of csv2lp."""

    mapping: MappingSpec
    read: ReadSettings
    delimiter: str = ","
    skip_errors: bool = False  # csv_skip_errors: bad rows are dropped (csv2lp's --on-error skip)


# ---------------------------------------------------------------- Go reference layouts

# Go's layout elements (time/format.go, nextStdChunk) -> strptime. None: csv2lp cannot parse it.
_GO_ELEMENTS = {
    "January": "%B", "Jan": "%b", "Monday": "%A", "Mon": "%a", "MST": None,
    "2006": "%Y", "06": "%y", "01": "%m", "1": "%m", "02": "%d", "2": "%d", "_2": "%e",
    "002": "%j", "__2": None, "15": "%H", "03": "%I", "3": "%I", "04": "%M", "4": "%M",
    "05": "%S", "5": "%S", "PM": "%p", "pm": "%p",
    "-0700": "%z", "-07:00": "%z", "-07": "%z", "Z0700": "%z", "Z07:00": "%z", "Z07": "%z",
    "-070000": None, "-07:00:00": None, "Z070000": None, "Z07:00:00": None,
}
_ZONES = ("Z07:00", "-07:00", "Z0700", "-0700", "Z07", "-07")


def go_layout_elements(layout: str) -> list[tuple[str, bool]]:
    """Split a Go layout into (text, is_element) pieces, by Go's own rules: `1` is always a month,
    `Jan` only when no lower-case letter follows, `.000`/`,999` only when no digit follows."""
    pieces: list[tuple[str, bool]] = []
    literal = ""
    i = 0
    while i < len(layout):
        element = _element_at(layout, i)
        if element is None:
            literal += layout[i]
            i += 1
            continue
        if literal:
            pieces.append((literal, False))
            literal = ""
        pieces.append((element, True))
        i += len(element)
    if literal:
        pieces.append((literal, False))
    return pieces


def _element_at(layout: str, i: int) -> str | None:
    rest = layout[i:]
    for word in ("January", "Monday"):
        if rest.startswith(word):
            return word
    for word in ("Jan", "Mon"):
        if rest.startswith(word) and not rest[3:4].islower():
            return word
    for element in ("MST", "2006", "002", "__2", "15", "PM", "pm", "-070000", "-07:00:00", "-0700", "-07:00",
                    "-07", "Z070000", "Z07:00:00", "Z0700", "Z07:00", "Z07"):
        if rest.startswith(element):
            return element
    if rest.startswith("_2") and not rest.startswith("_2006"):  # _2006 is a literal _ and the year
        return "_2"
    if rest[:2] in ("01", "02", "03", "04", "05", "06"):
        return rest[:2]
    if rest[:1] in ("1", "2", "3", "4", "5"):
        return rest[:1]
    if rest[:1] in (".", ",") and rest[1:2] in ("0", "9"):
        run = len(rest) - 1 - len(rest[1:].lstrip(rest[1]))
        if not rest[1 + run:2 + run].isdigit():
            return rest[: 1 + run]
    return None


def _is_fraction(element: str) -> bool:
    return element[:1] in (".", ",")


def go_layout_to_time_format(layout: str, *, option: str = "csv_timestamp_format") -> str:
    """A Telegraf timestamp format (unix*, a named layout or a Go layout) -> a csv2lp time format."""
    if layout in UNIX_FORMATS:
        return UNIX_FORMATS[layout]
    if layout.startswith("timestamp_tz"):
        raise MappingError(f"{option} = {layout!r} is not supported by csv2lp; use unix, unix_ms, unix_us or unix_ns "
                           f"with csv_timezone left out.")
    layout = NAMED_LAYOUTS.get(layout.lower(), layout)
    pieces = go_layout_elements(layout)
    elements = [text for text, is_element in pieces if is_element]
    if not elements:
        raise MappingError(f"{option} = {layout!r} is not a Go reference layout (it has none of 2006, 01, 02, 15, "
                           f"04, 05...); write the reference time Mon Jan 2 15:04:05 MST 2006 in your format.")
    if _iso_shaped(pieces):
        return "iso8601"
    if not {"2006", "06"} & set(elements):
        raise MappingError(f"{option} = {layout!r} has no year (2006 or 06); csv2lp needs one.")
    pattern = ""
    for text, is_element in pieces:
        if not is_element:
            pattern += text.replace("%", "%%")
            continue
        if _is_fraction(text):
            raise MappingError(
                f"{option} = {layout!r}: fractional seconds ({text}) can be read only in ISO 8601 layouts such "
                f"as 2006-01-02T15:04:05.000Z07:00 or 2006-01-02 15:04:05.000 (csv2lp's strptime has no "
                f"fractions); export the time in one of those shapes, or as unix_ms/unix_ns.")
        if _GO_ELEMENTS[text] is None:
            why = ("zone abbreviations (MST) are ambiguous; write a numeric offset (-0700) or leave the zone out "
                   "and set csv_timezone" if text == "MST" else f"the element {text!r} has no strptime equivalent")
            raise MappingError(f"{option} = {layout!r}: {why}.")
        pattern += _GO_ELEMENTS[text]
    return pattern


def _iso_shaped(pieces: list[tuple[str, bool]]) -> bool:
    """2006-01-02(T| )15:04[:05[.000|.999...]][zone]: what the iso8601 parser reads, fractions included.
    It is more lenient than Go (other ISO 8601 shapes pass too), never stricter."""
    date = [("2006", True), ("-", False), ("01", True), ("-", False), ("02", True)]
    if pieces[:5] != date or len(pieces) < 9:
        return False
    rest = pieces[5:]
    if rest[0] not in (("T", False), (" ", False)) or rest[1] != ("15", True) or rest[2:4] != [(":", False), ("04", True)]:
        return False
    rest = rest[4:]
    if rest[:2] == [(":", False), ("05", True)]:
        rest = rest[2:]
        if rest and rest[0][1] and rest[0][0].startswith("."):
            rest = rest[1:]
    if rest and (rest[0] == ("Z", False) or (rest[0][1] and rest[0][0] in _ZONES)):
        rest = rest[1:]
    return not rest


# ---------------------------------------------------------------- the config


def is_telegraf_csv_config(text: str) -> bool:
    """True for TOML holding csv_* keys at the top or an [[inputs.file]] table: Telegraf's, not a csv2lp mapping."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    return any(key.startswith("csv_") for key in data) or "file" in data.get("inputs", {})


def load_telegraf_csv_options(source: str | Path) -> TelegrafCsvConfig:
    """A bare table of csv_* keys, or a Telegraf config with one [[inputs.file]] of data_format "csv".

    `source` is the TOML text, or a Path to a file holding it.
    """
    if isinstance(source, Path):
        try:
            text = read_settings_text(source)
        except OSError as exc:
            raise MappingError(f"cannot read Telegraf config {source}: {exc.strerror or exc}.") from exc
        where = str(source)
    else:
        text, where = source, "Telegraf CSV options"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{where}: not valid TOML: {exc}.") from exc
    return _from_table(_input_table(data, where), where)


def _input_table(data: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    inputs = data.get("inputs", {}).get("file")
    if inputs is None:
        return data
    tables = inputs if isinstance(inputs, list) else [inputs]
    csv_tables = [t for t in tables if t.get("data_format", "influx") == "csv"]
    if len(csv_tables) != 1:
        raise MappingError(f"{where}: {len(csv_tables)} [[inputs.file]] tables have data_format = \"csv\"; "
                           f"csv2lp takes exactly one (put the one you mean in a file of its own).")
    return csv_tables[0]


def _from_table(table: Mapping[str, Any], where: str) -> TelegrafCsvConfig:
    options = _checked_keys(table, where)

    def get(key: str, kind: type, default: Any) -> Any:
        value = options.get(key, default)
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            raise MappingError(f"{where}: {key} = {value!r} must be {_kind_name(kind)}.")
        if kind is list and not all(isinstance(item, str) for item in value):
            raise MappingError(f"{where}: {key} must be a list of strings.")
        if kind is int and value < 0:
            raise MappingError(f"{where}: {key} = {value} must not be negative.")
        return value

    header_rows = get("csv_header_row_count", int, 0)
    column_names = tuple(get("csv_column_names", list, []))
    column_types = tuple(get("csv_column_types", list, []))
    if header_rows == 0 and not column_names:
        raise MappingError(f"{where}: csv_header_row_count is 0 (the default) and csv_column_names is empty; "
                           f"set csv_header_row_count = 1 if the file has a header line, else name the columns.")
    if column_names and column_types and len(column_names) != len(column_types):
        raise MappingError(f"{where}: csv_column_names has {len(column_names)} names but csv_column_types "
                           f"{len(column_types)} types; give one type per column.")
    delimiter = _one_character(get("csv_delimiter", str, ","), "csv_delimiter", where, default=",")
    comment = _one_character(get("csv_comment", str, ""), "csv_comment", where, default="")
    if comment and comment == delimiter:
        raise MappingError(f"{where}: csv_comment and csv_delimiter are both {comment!r}.")
    metadata_rows = get("csv_metadata_rows", int, 0)
    separators = tuple(get("csv_metadata_separators", list, []))
    if metadata_rows and not separators:
        raise MappingError(f"{where}: csv_metadata_rows = {metadata_rows} needs csv_metadata_separators, "
                           f"e.g. [\":\", \"=\"].")
    if get("csv_reset_mode", str, "none") not in ("none", "always"):
        raise MappingError(f"{where}: csv_reset_mode = {options['csv_reset_mode']!r} is not one of none, always.")
    read = ReadSettings(
        skip_rows=get("csv_skip_rows", int, 0),
        metadata_rows=metadata_rows,
        metadata_separators=separators,
        metadata_trim_set=get("csv_metadata_trim_set", str, ""),
        metadata_wins=not get("csv_tag_overwrite", bool, False),
        comment=comment,
        header_rows=header_rows,
        column_names=column_names,
        skip_columns=get("csv_skip_columns", int, 0),
        trim_space=get("csv_trim_space", bool, False),
        skip_values=tuple(get("csv_skip_values", list, [])),
        column_types=tuple(_field_type(t, where) for t in column_types),
    )
    measurement_column = get("csv_measurement_column", str, "") or None
    name_override = get("name_override", str, "") or None
    mapping = MappingSpec(
        # Telegraf renames every metric of the input after parsing: name_override beats the column,
        # which is still left out of the fields.
        measurement=name_override,
        measurement_column=None if name_override else measurement_column,
        exclude=(measurement_column,) if name_override and measurement_column else (),
        tags=tuple(TagSpec(column=c) for c in dict.fromkeys(get("csv_tag_columns", list, []))),
        time=_time_spec(get("csv_timestamp_column", str, ""), get("csv_timestamp_format", str, ""),
                        get("csv_timezone", str, ""), where),
    )
    return TelegrafCsvConfig(mapping, read, delimiter, get("csv_skip_errors", bool, False))


def _checked_keys(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, value in table.items():
        if key in CSV_KEYS or key == "name_override":
            options[key] = value
        elif key.startswith("csv_"):
            close = difflib.get_close_matches(key, CSV_KEYS, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise MappingError(f"{where}: {key} is not an option of Telegraf's CSV parser.{hint} "
                               f"Known options: {', '.join(CSV_KEYS)}.")
        elif key == "data_format" and value != "csv":
            raise MappingError(f"{where}: data_format = {value!r}; csv2lp reads Telegraf's \"csv\" format only.")
        elif key == "character_encoding" and str(value).lower() not in ("", "utf-8", "utf8"):
            raise MappingError(f"{where}: character_encoding = {value!r}; csv2lp reads UTF-8 only "
                               f"(convert the file first, e.g. iconv -f {value} -t UTF-8).")
        elif key not in IGNORED_INPUT_KEYS:
            raise MappingError(f"{where}: {key} is a Telegraf setting csv2lp does not apply (only the CSV parser's "
                               f"csv_* options, name_override and files are read); remove it from the file given "
                               f"to --config.")
    return options


def _kind_name(kind: type) -> str:
    return {int: "a whole number", str: "a string", bool: "true or false", list: "a list"}[kind]


def _one_character(value: str, key: str, where: str, *, default: str) -> str:
    if value == "":
        return default
    if len(value) != 1 or value in ('"', "\r", "\n", "\x00", "\ufffd"):
        raise MappingError(f"{where}: {key} = {value!r} must be one character other than a quote or a line break.")
    if key == "csv_delimiter" and delimiter_problem(value):
        raise MappingError(f"{where}: {key} = {value!r}: csv2lp reads {DELIMITER_RULE}.")
    return value


def _field_type(name: str, where: str) -> FieldType:
    if name not in TELEGRAF_TYPES:
        raise MappingError(f"{where}: csv_column_types has {name!r}; the types are int, float, bool and string.")
    return TELEGRAF_TYPES[name]


def _time_spec(column: str, layout: str, timezone: str, where: str) -> TimeSpec:
    if not column:
        return TimeSpec(column=NO_TIME)  # Telegraf stamps points with the time it read them: leave it to the server
    if not layout:
        raise MappingError(f"{where}: csv_timestamp_column = {column!r} needs csv_timestamp_format (unix, unix_ms, "
                           f"unix_us, unix_ns or a Go layout such as 2006-01-02T15:04:05Z07:00).")
    time_format = go_layout_to_time_format(layout)
    if timezone:
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise MappingError(f"{where}: csv_timezone = {timezone!r} is not an IANA time zone name "
                               f"such as Europe/Berlin.") from None
    return TimeSpec(column=column, format=time_format, timezone=timezone or "UTC")
