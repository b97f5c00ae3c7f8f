"""What every command shares: exit statuses, one-line messages, option callbacks that turn a setting that can never work into a usage error."""

from __future__ import annotations

from typing import NoReturn

import click

from ..errors import ConverterError, MappingError
from ..read.settings import delimiter_problem
from ..sinks.influxdb.server import check_url

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_REJECTS = 3
EXIT_STOPPED = 4

EXIT_CODES_HELP = """\b
Exit status:
  0  every row became a line
  1  error: bad option or mapping, unreadable input, an output that cannot
     be written or that failed (nothing or part written; the summary says how much)
  2  usage error (also a --time-format or --timezone that can never work)
  3  finished, but some rows were rejected (see the summary and the rejects file)
  4  --on-error fail stopped at the first bad row"""


def _checked(check):
    """A click callback: `check(value)` raises MappingError for a setting that can never work, which
    is then a usage error (exit 2) naming the option, before any file is opened."""

    def callback(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            try:
                check(value, where="")
            except MappingError as exc:
                raise click.BadParameter(str(exc).strip(), context, parameter) from None
        return value

    return callback


def _delimiter(context: click.Context, parameter: click.Parameter, value: str) -> str:
    """-d/--delimiter: 'tab' is a tab; a quote, a line break or more than one character can never split
    a row, and is a usage error here instead of "column ... is not in the header" later."""
    value = "\t" if value == "tab" else value
    if (problem := delimiter_problem(value)) is not None:
        raise click.UsageError(f"--delimiter: {problem}.", context)
    return value


def _influx_url(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    """--influx-url checked for shape (scheme, host, port 1-65535) before anything is read or sent."""
    if value is not None:
        try:
            check_url(value)
        except ConverterError as exc:
            raise click.UsageError(str(exc), context) from None
    return value


def _close_after_failure(sink) -> None:
    """Close an output after the run failed; a second failure there (a .gz's last bytes on a full disk)
    would only hide the first."""
    try:
        sink.close()
    except (ConverterError, OSError):
        pass


def _error(message: str) -> None:
    click.echo(f"csv2lp: error: {message}", err=True)


def _note(message: str) -> None:
    click.echo(f"csv2lp: {message}", err=True)


def _fail_usage(message: str) -> NoReturn:
    raise click.UsageError(message)
