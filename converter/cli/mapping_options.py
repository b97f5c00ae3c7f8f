"""The mapping options of convert and inspect (preset, TOML, -m/-t/-f, time), and the mapping they build."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import click
from click.core import ParameterSource

from ..errors import ConverterError
from ..formats.annotated import InputFormat
from ..formats.telegraf_csv import TelegrafCsvConfig, is_telegraf_csv_config, load_telegraf_csv_options
from ..mapping import (NO_TIME, KeyStyle, MappingOverrides, MappingSpec, OtherColumns, check_time_format,
                       check_timezone, load_mapping_file, load_preset, parse_field_flag, parse_tag_flag,
                       parse_type_flag, read_settings_text)
from ..plan.options import ConvertOptions, OnError
from .common import _checked


def _mapping_options(function):
    options = [
        click.option("--preset", metavar="NAME", help="A named mapping shipped with csv2lp: movebank."),
        click.option("--config", "config_path", metavar="TOML", type=click.Path(dir_okay=False),
                     help="A mapping file (see the README for its keys). Flags below override it."),
        click.option("-m", "--measurement", metavar="NAME",
                     help="Measurement name. Default: the preset's, or the file name without extensions."),
        click.option("--measurement-column", metavar="COLUMN", help="Take the measurement from this column."),
        click.option("-t", "--tag", "tags", multiple=True, metavar="[KEY=]COLUMN",
                     help="A tag column (repeatable). Empty cells leave the tag out."),
        click.option("-f", "--field", "fields", multiple=True, metavar="[KEY=]COLUMN[:TYPE]",
                     help="A field column with an optional type: float, integer, unsigned, string, boolean, auto."),
        click.option("--type", "types", multiple=True, metavar="COLUMN=TYPE",
                     help="Type of one of the other columns (repeatable)."),
        click.option("--exclude", multiple=True, metavar="COLUMN", help="Leave this column out (repeatable)."),
        click.option("--other-columns", type=click.Choice([o.value for o in OtherColumns]),
                     help="Columns not named as tag/field/time become fields (default) or are ignored."),
        click.option("--snake-case-keys", is_flag=True, default=None,
                     help="Derive keys as snake_case (`ground-speed` -> `ground_speed`)."),
        click.option("--time-column", metavar="COLUMN",
                     help="The time column. Default: one named time/timestamp/_time/datetime; "
                          "with none, points get the server's time."),
        click.option("--no-time", is_flag=True, help="Write no timestamps (the server stamps the points)."),
        click.option("--time-format", metavar="FORMAT", callback=_checked(check_time_format),
                     help="iso8601 (default; also rfc3339, movebank), epoch_s, epoch_ms, epoch_us, epoch_ns, "
                          "or a strptime pattern like '%d/%m/%Y %H:%M:%S' (one that cannot read a time back "
                          "is a usage error)."),
        click.option("--timezone", metavar="TZ", callback=_checked(check_timezone),
                     help="Zone of times without an offset (default UTC), e.g. Europe/Berlin; an unknown zone is "
                          "a usage error."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def build_mapping(preset: str | None, config_path: str | None, measurement: str | None,
                  measurement_column: str | None, tags: Sequence[str], fields: Sequence[str],
                  types: Sequence[str], exclude: Sequence[str], other_columns: str | None,
                  snake_case_keys: bool | None, time_column: str | None, no_time: bool,
                  time_format: str | None, timezone: str | None) -> MappingSpec:
    if preset and config_path:
        raise ConverterError("--preset and --config cannot be combined; put the preset's settings in your TOML file.")
    telegraf = telegraf_config(config_path)
    base = (load_preset(preset) if preset else telegraf.mapping if telegraf else
            load_mapping_file(config_path) if config_path else MappingSpec())
    overrides = MappingOverrides(
        measurement=measurement,
        measurement_column=measurement_column,
        tags=tuple(parse_tag_flag(t) for t in tags),
        fields=tuple(parse_field_flag(f) for f in fields),
        other_columns=OtherColumns(other_columns) if other_columns else None,
        exclude=tuple(exclude),
        column_types=dict(parse_type_flag(t) for t in types),
        key_style=KeyStyle.SNAKE_CASE if snake_case_keys else None,
        time_column=NO_TIME if no_time else time_column,
        time_format=time_format,
        timezone=timezone,
    )
    return base.overridden_by(overrides)


def telegraf_config(config_path: str | None) -> TelegrafCsvConfig | None:
    """The --config file in Telegraf's terms (csv_* keys or [[inputs.file]]); None for a csv2lp mapping file."""
    try:
        text = read_settings_text(config_path) if config_path else ""
    except OSError:
        return None  # load_mapping_file says what is wrong with it
    return load_telegraf_csv_options(Path(config_path)) if config_path and is_telegraf_csv_config(text) else None


def _with_telegraf_settings(options: ConvertOptions, config_path: str | None) -> ConvertOptions:
    """A Telegraf config's read settings; its delimiter and csv_skip_errors, and plain CSV, unless
    -d/--on-error/--format are given."""
    telegraf = telegraf_config(config_path)
    if telegraf is None:
        return options
    context = click.get_current_context()

    def given(name: str) -> bool:
        return context.get_parameter_source(name) is not ParameterSource.DEFAULT

    return replace(options, read=telegraf.read,
                   delimiter=options.delimiter if given("delimiter") else telegraf.delimiter,
                   on_error=OnError.SKIP if telegraf.skip_errors and not given("on_error") else options.on_error,
                   input_format=options.input_format if given("input_format") else InputFormat.CSV)


_format_option = click.option(
    "--format", "input_format", type=click.Choice([f.value for f in InputFormat]), default="auto", show_default=True,
    help="Input format: annotated CSV (influx write's: #datatype lines or name|type headers; it carries its own "
         "mapping) or plain CSV; auto looks at the first line.")
