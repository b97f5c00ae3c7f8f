"""csv2lp inspect: how a file would be mapped, before converting it."""

from __future__ import annotations

import sys

import click

from ..errors import ConverterError
from ..formats.annotated import InputFormat
from ..read.source import DEFAULT_MAX_COLUMNS
from .common import _delimiter, _error

MAX_SAMPLE_LINES = 100_000  # lines shown; each is kept in memory until printed
from .mapping_options import _format_option, _mapping_options, build_mapping, telegraf_config


@click.command("inspect")
@click.argument("inputs", nargs=-1, required=True, metavar="FILE...")
@_mapping_options
@click.option("-d", "--delimiter", default=",", show_default=True, callback=_delimiter, help="Cell delimiter (one character; 'tab' for tabs).")
@click.option("-n", "--lines", "sample_lines", type=click.IntRange(0, MAX_SAMPLE_LINES), default=5, show_default=True,
              help="How many output lines to show.")
@click.option("--max-columns", type=click.IntRange(0), default=DEFAULT_MAX_COLUMNS, show_default=True, metavar="N",
              help="A file whose header has more columns is refused, as by convert. 0: no limit.")
@_format_option
def inspect_command(inputs: tuple[str, ...], delimiter: str, sample_lines: int, max_columns: int, input_format: str,
                    **mapping_flags) -> None:
    """Show each column's role, type and share of empty cells, tag cardinality, and sample lines.

    Reads the whole input (it counts distinct tag values), writes nothing.

    \b
    Example:
      csv2lp inspect gps.csv.gz --preset movebank
    """
    from ..inspect import inspect_inputs, render

    try:
        mapping = build_mapping(**mapping_flags)
        telegraf = telegraf_config(mapping_flags["config_path"])
        if telegraf is not None and (not telegraf.read.plain or telegraf.delimiter != ","):
            raise ConverterError("inspect does not apply the header, line and delimiter options of a Telegraf "
                                 "config yet; use `csv2lp convert` (its summary and rejects file tell the same).")
        report = inspect_inputs(list(inputs), mapping=mapping, delimiter=delimiter,
                                sample_lines=sample_lines, input_format=InputFormat(input_format),
                                max_columns=max_columns)
    except ConverterError as exc:
        _error(str(exc))
        sys.exit(exc.exit_code)
    click.echo(render(report))
