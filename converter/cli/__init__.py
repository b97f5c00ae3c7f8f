"""The `csv2lp` command: argument parsing only. Library errors become one message and an exit status."""

from __future__ import annotations

import click

from .. import __version__
from .common import EXIT_ERROR, EXIT_OK, EXIT_REJECTS, EXIT_STOPPED, EXIT_USAGE
from .convert import convert_command
from .execd import execd_command
from .inspect import inspect_command
from .memory import prefer_jemalloc
from .presets import presets_command


class _DefaultToConvert(click.Group):
    """`csv2lp data.csv` means `csv2lp convert data.csv`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["convert", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultToConvert, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="csv2lp")
def main() -> None:
    """Convert CSV files to InfluxDB line protocol, fast, without losing a row silently.

    \b
    csv2lp FILE...          is short for   csv2lp convert FILE...
    csv2lp inspect FILE     shows how a file would be mapped, before converting it
    csv2lp execd ...        runs as a Telegraf inputs.execd plugin (see telegraf/README.md)

    \b
    Examples:
      csv2lp gps.csv --preset movebank > gps.lp
      csv2lp inspect gps.csv --preset movebank
    """
    prefer_jemalloc()  # memory.py: the lower peak RSS, measured


for _command in (convert_command, inspect_command, presets_command, execd_command):
    main.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    main()

# The exit statuses are part of the command line (README "Exit status"): importable from here.
__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_REJECTS", "EXIT_STOPPED", "EXIT_USAGE", "main"]
