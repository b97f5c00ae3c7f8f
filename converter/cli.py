"""The `csv2lp` command: argument parsing only. Library errors become one message and an exit status."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import NoReturn, Sequence

import click
from click.core import ParameterSource

from . import __version__
from .formats.annotated import InputFormat
from .books.duplicates import DuplicateMode
from .encode.encoder import DEFAULT_MAX_STRING_BYTES
from .errors import ConverterError, MappingError, os_error_text
from .mapping import (
    NO_TIME,
    KeyStyle,
    MappingOverrides,
    MappingSpec,
    OtherColumns,
    check_time_format,
    check_timezone,
    Precision,
    load_mapping_file,
    load_preset,
    parse_field_flag,
    parse_tag_flag,
    parse_type_flag,
)
from .memory import prefer_jemalloc
from .pipeline import ConvertOptions, OnError, convert, prepare
from .read.source import DEFAULT_BLOCK_SIZE
from .sinks import open_output
from .sinks.file import WriteFailed
from .books.summary import RunSummary
from .formats.telegraf_csv import TelegrafCsvConfig, is_telegraf_csv_config, load_telegraf_csv_options

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
        text = Path(config_path).read_text(encoding="utf-8") if config_path else ""
    except (OSError, UnicodeDecodeError):
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


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("inputs", nargs=-1, required=True, metavar="FILE...")
@_mapping_options
@click.option("-o", "--output", metavar="FILE",
              help="Write lines here instead of stdout; a .gz name compresses. Checked before any row is read: "
                   "its folder must exist and take files, and it must be no input and no other output.")
@click.option("--influx-url", metavar="URL",
              help="Write straight to InfluxDB at URL (e.g. http://localhost:8086) instead of stdout: InfluxDB 2/3 "
                   "through /api/v2/write with the token from $INFLUX_TOKEN or --token-file; InfluxDB 1.x through "
                   "/write with $INFLUX_USERNAME/$INFLUX_PASSWORD (or a --token-file holding user:password), or "
                   "nothing when its auth is off. /ping tells which.")
@click.option("--bucket", metavar="NAME",
              help="With --influx-url: the bucket (InfluxDB 1.x: DATABASE or DATABASE/RETENTION_POLICY; 3.x: the "
                   "database).")
@click.option("--org", metavar="NAME", help="With --influx-url: the organization (needed by InfluxDB 2).")
@click.option("--token-file", metavar="FILE", type=click.Path(dir_okay=False),
              help="With --influx-url: read the API token (1.x: user:password) from FILE's first line instead of "
                   "the environment.")
@click.option("--create-bucket", is_flag=True,
              help="With --influx-url: create the bucket first when it is missing (InfluxDB 2's buckets API; "
                   "InfluxDB 1.x: CREATE DATABASE).")
@click.option("--batch-lines", type=click.IntRange(1), metavar="N",
              help="With --influx-url: lines per write request (default 5000).")
@click.option("--connections", type=click.IntRange(1, 8), metavar="N",
              help="With --influx-url: requests in flight at once, one per connection (default 2; 1 sends one "
                   "request at a time). Copies of a point always share a connection, so the last one wins.")
@click.option("--gzip/--no-gzip", "gzip", default=None,
              help="With --influx-url: compress the requests (default: yes, but not to a loopback address).")
@click.option("-p", "--precision", type=click.Choice([p.value for p in Precision]), default="ns", show_default=True,
              help="Timestamp precision; give the same to `influx write -p` or the /write API.")
@click.option("--on-error", type=click.Choice([o.value for o in OnError]), default="quarantine", show_default=True,
              help="Bad rows: save them to the rejects file and go on, only count them, or stop at the first.")
@click.option("--rejects", "rejects_path", metavar="FILE", default="csv2lp-rejects.csv", show_default=True,
              help="Where --on-error quarantine saves rejected rows (created only when a row is rejected; its "
                   "folder is checked before any row is read, as -o is).")
@click.option("--control-chars", type=click.Choice(["reject", "replace"]), default="reject", show_default=True,
              help="Control characters (C0, DEL, C1, U+2028/U+2029) in tags and names, and line breaks in string "
                   "fields: reject the row, or replace them with spaces. A cell an unbalanced quote ran away with is "
                   "rejected either way.")
@click.option("--max-string-bytes", type=click.IntRange(0), default=DEFAULT_MAX_STRING_BYTES, show_default=True,
              metavar="N", help="Longest string field value in bytes; a longer one rejects its row (InfluxDB "
                                "documents 64 KB as its limit). 0: no limit.")
@click.option("--duplicates", type=click.Choice([m.value for m in DuplicateMode]), default="warn", show_default=True,
              help="Rows with the same series and time (InfluxDB keeps only the last): count them, reject them, "
                   "move later ones by one time unit (nudge), or skip the check.")
@click.option("--s2-level", type=click.IntRange(0, 30), metavar="N",
              help="Add an s2_cell_id tag: the S2 cell token of (lat, lon) at level N (0-30; 11 is about 5 km).")
@click.option("-d", "--delimiter", default=",", show_default=True, help="Cell delimiter (one character; 'tab' for tabs).")
@click.option("--block-size", type=click.IntRange(1 << 16), default=DEFAULT_BLOCK_SIZE, show_default=True,
              help="Bytes per read block; the longest row must fit in one.")
@_format_option
@click.option("--summary-json", metavar="FILE",
              help="Also write the end-of-run numbers as JSON (checked before any row is read, as -o is).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: only when stderr is a terminal).")
def convert_command(inputs: tuple[str, ...], output: str | None, precision: str, on_error: str, rejects_path: str,
                    control_chars: str, max_string_bytes: int, duplicates: str, s2_level: int | None, delimiter: str, block_size: int,
                    input_format: str,
                    summary_json: str | None, quiet: bool, progress: bool | None, influx_url: str | None,
                    bucket: str | None, org: str | None, token_file: str | None, create_bucket: bool,
                    batch_lines: int | None, connections: int | None, gzip: bool | None, **mapping_flags) -> None:
    """Convert CSV FILEs (paths, globs, '-' for stdin, FIFOs, <(...); .gz/.bz2/.zst) to line protocol.

    Each input is read once. The measurement defaults to the file's name; <(...) has none
    (/dev/fd/63), so give -m. A closed pipe downstream (| head) stops the run with one line.

    \b
    Examples:
      csv2lp gps.csv --preset movebank > gps.lp
      csv2lp 'exports/*.csv.gz' --preset movebank --precision ms | influx write -b movebank -p ms
      csv2lp data.csv -m weather -t station -f temp:float -f rain_mm=rain:float --time-column when
      zcat big.csv.gz | csv2lp - --config mapping.toml -o big.lp.gz --summary-json run.json
      csv2lp <(unzip -p export.zip gps.csv) -m gps -o gps.lp
      csv2lp gps.csv --preset movebank --influx-url http://localhost:8086 --org me --bucket movebank --token-file ~/.influx-token
    """
    influx_flags = {"--bucket": bucket, "--org": org, "--token-file": token_file,
                    "--create-bucket": create_bucket or None, "--batch-lines": batch_lines,
                    "--connections": connections, "--gzip/--no-gzip": gzip}
    if influx_url is None and any(value is not None for value in influx_flags.values()):
        _fail_usage(f"{', '.join(k for k, v in influx_flags.items() if v is not None)} only go with --influx-url.")
    if influx_url is not None and output is not None:
        _fail_usage("-o/--output and --influx-url cannot be combined: lines go to a file or to InfluxDB, not both.")
    if influx_url is not None and not bucket:
        _fail_usage("--influx-url needs --bucket (the bucket, or the database on InfluxDB 1.x/3.x).")
    if delimiter == "tab":
        delimiter = "\t"
    if len(delimiter) != 1:
        _fail_usage(f"--delimiter must be one character, got {delimiter!r}.")
    options = ConvertOptions(
        precision=Precision(precision),
        on_error=OnError(on_error),
        rejects_path=rejects_path,
        replace_control_chars=control_chars == "replace",
        s2_level=s2_level,
        max_string_bytes=max_string_bytes or None,
        duplicates=DuplicateMode(duplicates),
        delimiter=delimiter,
        block_size=block_size,
        input_format=InputFormat(input_format),
    )
    show_progress = (not quiet) and (progress if progress is not None else sys.stderr.isatty())
    summary: RunSummary | None = None
    sink_report: list[str] = []  # what a server confirmed (--influx-url)
    sink = None
    status = EXIT_OK
    reader_gone: WriteFailed | None = None
    try:
        mapping = build_mapping(**mapping_flags)
        options = _with_telegraf_settings(options, mapping_flags["config_path"])
        # Every path the run writes is checked, and every file's header, before the output is opened.
        prepared = prepare(list(inputs), mapping=mapping, options=options,
                           outputs=[("-o", output), ("--summary-json", summary_json)],
                           lines_to_stdout=influx_url is None and output is None)
        if influx_url is not None:
            from .sinks.influxdb import open_influx_sink

            sink = open_influx_sink(influx_url, bucket=bucket or "", org=org, token_file=token_file,
                                    create_bucket=create_bucket, batch_lines=batch_lines, connections=connections,
                                    gzip=gzip, precision=options.precision, notify=None if quiet else _note)
        else:
            sink = open_output(output)
        try:
            from .progressbar import progress_reporter

            with progress_reporter(show_progress) as report:
                summary = convert(prepared, mapping=mapping, options=options, sink=sink, progress=report)
        except BaseException:
            _close_after_failure(sink)
            raise
        sink.close()
        sink_report = sink.report_lines() if hasattr(sink, "report_lines") else []
    except WriteFailed as exc:
        summary = getattr(exc, "summary", None) or summary
        status = EXIT_ERROR
        if exc.reader_gone:
            reader_gone = exc  # `csv2lp x.csv | head`: usual, so one line, not an error with a summary
        else:
            _error(str(exc))
    except ConverterError as exc:
        # A sink that fails at close() (InfluxDB) fails after convert() returned its summary.
        summary = getattr(exc, "summary", None) or summary
        _error(str(exc))
        status = exc.exit_code
    if summary is not None and hasattr(sink, "lines_confirmed"):
        summary.lines_confirmed = sink.lines_confirmed  # type: ignore[union-attr]
    try:
        if reader_gone is not None:
            written = summary.lines_written if summary is not None else 0
            click.echo(f"csv2lp: {reader_gone.label} was closed by its reader after {written:,} "
                       f"line{'' if written == 1 else 's'}; stopped (the rest of the input was not converted).", err=True)
        elif summary is not None and not quiet and (summary.files or status == EXIT_OK):
            # An error before the first file was read has nothing to sum up: its message stands alone.
            for line in [*summary.text_lines(), *sink_report]:
                click.echo(line, err=True)
    except OSError:
        pass  # stderr is gone too (`csv2lp x.csv 2>&1 | head`): nobody is left to tell
    if summary is not None:
        if summary_json:
            try:
                summary.write_json(summary_json)
            except OSError as exc:
                _error(f"--summary-json {summary_json}: cannot write: {os_error_text(exc)}.")
                status = EXIT_ERROR
        if status == EXIT_OK and summary.rows_rejected:
            status = EXIT_REJECTS
    sys.exit(status)


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


@main.command("inspect")
@click.argument("inputs", nargs=-1, required=True, metavar="FILE...")
@_mapping_options
@click.option("-d", "--delimiter", default=",", show_default=True, help="Cell delimiter (one character; 'tab' for tabs).")
@click.option("-n", "--lines", "sample_lines", type=click.IntRange(0), default=5, show_default=True,
              help="How many output lines to show.")
@_format_option
def inspect_command(inputs: tuple[str, ...], delimiter: str, sample_lines: int, input_format: str,
                    **mapping_flags) -> None:
    """Show each column's role, type and share of empty cells, tag cardinality, and sample lines.

    Reads the whole input (it counts distinct tag values), writes nothing.

    \b
    Example:
      csv2lp inspect gps.csv.gz --preset movebank
    """
    from .inspect import inspect_inputs, render

    try:
        mapping = build_mapping(**mapping_flags)
        telegraf = telegraf_config(mapping_flags["config_path"])
        if telegraf is not None and (not telegraf.read.plain or telegraf.delimiter != ","):
            raise ConverterError("inspect does not apply the header, line and delimiter options of a Telegraf "
                                 "config yet; use `csv2lp convert` (its summary and rejects file tell the same).")
        report = inspect_inputs(list(inputs), mapping=mapping, delimiter="\t" if delimiter == "tab" else delimiter,
                                sample_lines=sample_lines, input_format=InputFormat(input_format))
    except ConverterError as exc:
        _error(str(exc))
        sys.exit(exc.exit_code)
    click.echo(render(report))


@main.command("presets")
def presets_command() -> None:
    """List the shipped mapping presets.

    \b
    Example:
      csv2lp presets
    """
    from importlib import resources

    for entry in sorted(resources.files("converter.presets").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            click.echo(entry.name[:-5])


@main.command("execd")
@click.option("--config", "config_path", metavar="TOML", type=click.Path(dir_okay=False),
              help="execd settings: [spool], [convert], [flow], [pacing] (see telegraf/csv2lp.toml).")
@click.option("--spool", "spool_dir", metavar="DIR", type=click.Path(file_okay=False),
              help="The folder to watch, instead of [spool] dir; done/, rejects/ and error/ go inside it.")
@click.option("--preset", metavar="NAME", help="A shipped mapping (movebank), instead of [convert].")
@click.option("--mapping", "mapping_path", metavar="TOML", type=click.Path(dir_okay=False),
              help="A mapping file (as `convert --config`), instead of [convert].")
@click.option("-p", "--precision", type=click.Choice([p.value for p in Precision]),
              help="Timestamp precision (default ns); Telegraf's influx_timestamp_precision must match.")
@click.option("--s2-level", type=click.IntRange(0, 30), metavar="N", help="Add an s2_cell_id tag at level N.")
def execd_command(config_path: str | None, spool_dir: str | None, preset: str | None, mapping_path: str | None,
                  precision: str | None, s2_level: int | None) -> None:
    """Run under Telegraf's inputs.execd: convert CSV files dropped into a spool folder.

    Prints line protocol on stdout as fast as Telegraf's output drains, reading Telegraf's
    own buffer numbers ([flow]: its [[inputs.internal]] served by [[outputs.prometheus_client]]
    on loopback), or at the fixed pace of [pacing] without them; not throttled at all when
    stdout is a file or a terminal. Logs to stderr with E!/W!/I!/D! prefixes, and stops
    (exit 0) when stdin closes or on SIGTERM. Drop files by renaming them into the spool:
    they are taken at once. See telegraf/README.md.

    \b
    Examples:
      csv2lp execd --config /etc/csv2lp/csv2lp.toml
      csv2lp execd --spool ./spool --preset movebank > out.lp    (Ctrl-D stops it)
    """
    from . import execd

    if preset and mapping_path:
        _fail_usage("--preset and --mapping cannot be combined.")
    if config_path is None and spool_dir is None:
        _fail_usage("give --config FILE (the execd settings), or at least --spool DIR.")
    overrides = execd.SettingsOverrides(spool_dir=spool_dir, preset=preset, mapping=mapping_path,
                                        precision=precision, s2_level=s2_level)
    sys.exit(execd.run(config_path, overrides))


if __name__ == "__main__":  # pragma: no cover
    main()
