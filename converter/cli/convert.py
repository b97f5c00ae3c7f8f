"""csv2lp convert: the options of a run, checked, then one call of the library."""

from __future__ import annotations

import sys

import click

from ..books.duplicates import DuplicateMode
from ..books.summary import RunSummary
from ..encode.encoder import DEFAULT_MAX_STRING_BYTES
from ..errors import ConverterError, os_error_text
from ..formats.annotated import InputFormat
from ..mapping import Precision
from ..pipeline import convert
from ..plan.options import ConvertOptions, OnError
from ..plan.prepare import prepare
from ..read.expansion import DEFAULT_MAX_EXPANSION
from ..read.source import DEFAULT_BLOCK_SIZE, DEFAULT_MAX_COLUMNS, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE
from ..sinks import open_output
from ..sinks.file import WriteFailed
from . import kafka_options as kafka
from .common import (EXIT_CODES_HELP, EXIT_ERROR, EXIT_OK, EXIT_REJECTS, _close_after_failure, _delimiter, _error,
                     _fail_usage, _influx_url, _note)
from .mapping_options import _format_option, _mapping_options, _with_telegraf_settings, build_mapping


@click.command("convert", epilog=EXIT_CODES_HELP)
@click.argument("inputs", nargs=-1, required=True, metavar="FILE...")
@_mapping_options
@click.option("-o", "--output", metavar="FILE",
              help="Write lines here instead of stdout; a .gz name compresses. Checked before any row is read: "
                   "its folder must exist and take files, and it must be no input and no other output.")
@click.option("--influx-url", metavar="URL", callback=_influx_url,
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
@kafka.kafka_options
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
@click.option("-d", "--delimiter", default=",", show_default=True, callback=_delimiter, help="Cell delimiter (one character; 'tab' for tabs).")
@click.option("--block-size", type=click.IntRange(MIN_BLOCK_SIZE, MAX_BLOCK_SIZE), default=DEFAULT_BLOCK_SIZE,
              show_default=True, help="Bytes per read block (64 KiB to 1 GiB); the header and each row must fit in "
                                      "one: a longer row is rejected, a longer header refuses the file.")
@click.option("--max-expansion", type=click.IntRange(0), default=DEFAULT_MAX_EXPANSION, show_default=True,
              metavar="N", help="A compressed input that decompresses to more than N times its size (CSV: about "
                                "10) stops there, as a decompression bomb. 0: no limit.")
@click.option("--max-columns", type=click.IntRange(0), default=DEFAULT_MAX_COLUMNS, show_default=True, metavar="N",
              help="A file whose header has more columns is refused when its header is read (each column costs "
                   "about a millisecond and memory). 0: no limit.")
@_format_option
@click.option("--summary-json", metavar="FILE",
              help="Also write the end-of-run numbers as JSON (checked before any row is read, as -o is).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: only when stderr is a terminal).")
def convert_command(inputs: tuple[str, ...], output: str | None, precision: str, on_error: str, rejects_path: str,
                    control_chars: str, max_string_bytes: int, duplicates: str, s2_level: int | None, delimiter: str, block_size: int,
                    max_expansion: int, max_columns: int,
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
      csv2lp gps.csv --preset movebank --kafka-brokers kafka-1:9092,kafka-2:9092 --kafka-topic movebank
    """
    influx_flags = {"--bucket": bucket, "--org": org, "--token-file": token_file,
                    "--create-bucket": create_bucket or None, "--batch-lines": batch_lines,
                    "--connections": connections, "--gzip/--no-gzip": gzip}
    kafka_flags = kafka.take_flags(mapping_flags)
    if problem := kafka.usage_problem(kafka_flags, output=output, influx_url=influx_url):
        _fail_usage(problem)
    if influx_url is None and any(value is not None for value in influx_flags.values()):
        _fail_usage(f"{', '.join(k for k, v in influx_flags.items() if v is not None)} only go with --influx-url.")
    if influx_url is not None and output is not None:
        _fail_usage("-o/--output and --influx-url cannot be combined: lines go to a file or to InfluxDB, not both.")
    if influx_url is not None and not bucket:
        _fail_usage("--influx-url needs --bucket (the bucket, or the database on InfluxDB 1.x/3.x).")
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
        max_expansion=max_expansion,
        max_columns=max_columns,
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
                           lines_to_stdout=influx_url is None and output is None and not kafka.wanted(kafka_flags))
        if kafka.wanted(kafka_flags):
            sink = kafka.open_kafka_from_flags(kafka_flags, notify=None if quiet else _note)
        elif influx_url is not None:
            from ..sinks.influxdb import open_influx_sink

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
