"""The `csv2lp` command: exit statuses, exact messages, inputs and outputs, the summary.

Most runs go through click's CliRunner (in-process, fast); a few run the installed console
script as a child process, where only a real process shows the behaviour: the shorthand as
the shell sees it, gzip on a real stdin pipe, a reader that closes the pipe early.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from converter.cli import main

WEATHER = textwrap.dedent("""
    station,temp,time
    north,1.5,2020-01-01T00:00:00Z
    south,2.5,2020-01-01T00:00:01Z
    """).lstrip("\n")
WEATHER_LINES = [
    "weather,station=north temp=1.5 1577836800000000000",
    "weather,station=south temp=2.5 1577836801000000000",
]
WEATHER_ARGS = ("-t", "station", "--type", "temp=float")

WITH_REJECT = WEATHER + "east,warm,2020-01-01T00:00:02Z\n"
FLOAT_REASON = "invalid float in column 'temp'"

RATE_LINE = re.compile(r"^\d[\d,]* rows? read from \d+ files?( in \d+\.\d\d s \([\d,]+ rows/s\))?$")


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path (the default rejects file lands in the working directory)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run(*args: str, stdin: bytes | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), input=stdin, prog_name="csv2lp")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def csv2lp_process(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["csv2lp", *args], cwd=cwd, input=stdin, capture_output=True, timeout=60)


# ---------------------------------------------------------------- exit statuses


def test_exit_0_every_row_became_a_line(in_tmp: Path) -> None:
    write(in_tmp / "weather.csv", WEATHER)

    result = run("weather.csv", *WEATHER_ARGS)

    assert result.exit_code == 0
    assert result.stdout.splitlines() == WEATHER_LINES
    assert not (in_tmp / "csv2lp-rejects.csv").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (("missing.csv",), "missing.csv: no such file."),
        (("weather.csv", "-t", "place"),
         "weather.csv: column 'place' (tag) is not in the header. Columns: 'station', 'temp', 'time'."),
        (("weather.csv", "--preset", "movebank", "--config", "m.toml"),
         "--preset and --config cannot be combined; put the preset's settings in your TOML file."),
        (("weather.csv", "--preset", "weather"), "no preset named 'weather'; available presets: movebank."),
        (("weather.csv", "--type", "temp"),
         "--type 'temp': expected COLUMN=TYPE with TYPE one of float, integer, unsigned, string, boolean, auto."),
        (("-", "-"), "'-' (stdin) can be given only once."),
    ],
    ids=["missing file", "missing column", "preset and config", "unknown preset", "bad --type", "stdin twice"],
)
def test_exit_1_error_is_one_line_naming_the_problem(in_tmp: Path, args: tuple[str, ...], message: str) -> None:
    write(in_tmp / "weather.csv", WEATHER)

    result = run(*args)

    assert result.exit_code == 1
    assert result.stderr == f"csv2lp: error: {message}\n"
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (("weather.csv", "--qqqq"), "No such option '--qqqq'."),
        (("weather.csv", "--precision", "m"),
         "Invalid value for '-p' / '--precision': 'm' is not one of 'ns', 'us', 'ms', 's'."),
        (("weather.csv", "--on-error", "ignore"),
         "Invalid value for '--on-error': 'ignore' is not one of 'quarantine', 'skip', 'fail'."),
        (("weather.csv", "-d", ";;"), "--delimiter: ';;' cannot be the delimiter: give one ASCII character "
                                          "other than a quote, a line break or NUL (e.g. ',', ';', '|', or 'tab')."),
        (("weather.csv", "--s2-level", "31"), "Invalid value for '--s2-level': 31 is not in the range 0<=x<=30."),
        (("convert",), "Missing argument 'FILE...'."),
        (("weather.csv", "--time-format", "dd.mm.yyyy"),
         "Invalid value for '--time-format': 'dd.mm.yyyy' is not known; use one of iso8601, rfc3339, movebank, "
         "epoch_s, epoch_ms, epoch_us, epoch_ns or a strptime pattern such as '%d/%m/%Y %H:%M:%S'."),
    ],
    ids=["unknown option", "bad precision", "bad on-error", "long delimiter", "s2 level", "no file",
         "unknown time format"],
)
def test_exit_2_usage_error(in_tmp: Path, args: tuple[str, ...], message: str) -> None:
    write(in_tmp / "weather.csv", WEATHER)

    result = run(*args)

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: {message}"
    assert result.stderr.startswith("Usage: csv2lp convert [OPTIONS] FILE...\n")
    assert result.stdout == ""


def test_exit_3_finished_with_rejects_and_says_where_they_are(in_tmp: Path) -> None:
    write(in_tmp / "weather.csv", WITH_REJECT)

    result = run("weather.csv", *WEATHER_ARGS)

    assert result.exit_code == 3
    assert result.stdout.splitlines() == WEATHER_LINES
    first, *rest = result.stderr.splitlines()
    assert RATE_LINE.match(first) and first.startswith("3 rows read from 1 file")
    assert rest == [
        "2 lines written",
        "1 row rejected",
        f"  1 × {FLOAT_REASON}",
        "rejected rows saved to csv2lp-rejects.csv",
    ]
    assert (in_tmp / "csv2lp-rejects.csv").read_text() == (
        "file,line,reason,value,station,temp,time\n"
        f"weather.csv,4,{FLOAT_REASON},warm,east,warm,2020-01-01T00:00:02Z\n"
    )


def test_exit_4_on_error_fail_stops_at_the_first_bad_row(in_tmp: Path) -> None:
    write(in_tmp / "weather.csv", WITH_REJECT + "west,4.5,2020-01-01T00:00:03Z\n")

    result = run("weather.csv", *WEATHER_ARGS, "--on-error", "fail")

    assert result.exit_code == 4
    assert result.stdout.splitlines() == WEATHER_LINES
    assert result.stderr.splitlines()[0] == (
        f"csv2lp: error: weather.csv:4: {FLOAT_REASON}: 'warm'. To fix: correct the value, or declare the "
        "column's type (--type temp=string) if it holds text. (--on-error fail stops at the first bad row; "
        "--on-error quarantine saves bad rows to a rejects file and goes on.)"
    )
    assert result.stderr.splitlines()[2:] == ["2 lines written", "1 row rejected", f"  1 × {FLOAT_REASON}"]


def test_exit_statuses_are_documented_in_convert_help() -> None:
    result = run("convert", "--help")

    documented = re.findall(r"^\s+(\d)  (.+)$", result.stdout.split("Exit status:")[1], flags=re.M)
    assert [status for status, _ in documented] == ["0", "1", "2", "3", "4"]
    assert documented[4] == ("4", "--on-error fail stopped at the first bad row")


# ---------------------------------------------------------------- commands and help


def test_file_shorthand_is_convert(tmp_path: Path) -> None:
    write(tmp_path / "weather.csv", WITH_REJECT)

    short = csv2lp_process("weather.csv", *WEATHER_ARGS, "-q", cwd=tmp_path)
    long = csv2lp_process("convert", "weather.csv", *WEATHER_ARGS, "-q", cwd=tmp_path)

    assert (short.returncode, short.stdout, short.stderr) == (long.returncode, long.stdout, long.stderr)
    assert (short.returncode, short.stdout.decode().splitlines()) == (3, WEATHER_LINES), short.stderr.decode()


def test_python_dash_m_converter_is_the_same_command(tmp_path: Path) -> None:
    write(tmp_path / "weather.csv", WEATHER)

    done = subprocess.run([sys.executable, "-m", "converter", "weather.csv", *WEATHER_ARGS, "-q"], cwd=tmp_path,
                          capture_output=True, timeout=60)

    assert (done.returncode, done.stdout.decode().splitlines(), done.stderr) == (0, WEATHER_LINES, b"")


@pytest.mark.parametrize("command", [[], *([name] for name in main.commands)], ids=lambda c: " ".join(c) or "csv2lp")
def test_help_of_every_command_exits_0_and_shows_examples(command: list[str]) -> None:
    result = run(*command, "--help")

    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: csv2lp {' '.join(command)}".rstrip() + " ")
    examples = result.stdout.split("Example", 1)[1].split("\n\n")[0].splitlines()[1:]
    assert examples and all(line.strip().startswith(("csv2lp ", "zcat ")) for line in examples), examples


def test_version() -> None:
    result = run("--version")

    assert (result.exit_code, result.stdout) == (0, "csv2lp, version 0.1.0\n")


# ---------------------------------------------------------------- inputs


def test_stdin_plain(in_tmp: Path) -> None:
    result = run("-", *WEATHER_ARGS, stdin=WEATHER.encode())

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [line.replace("weather,", "stdin,") for line in WEATHER_LINES]


def test_stdin_gzipped_with_a_bom_is_recognised_by_its_magic_bytes(in_tmp: Path) -> None:
    result = run("-", *WEATHER_ARGS, "-m", "weather", stdin=gzip.compress(b"\xef\xbb\xbf" + WEATHER.encode()))

    assert result.exit_code == 0
    assert result.stdout.splitlines() == WEATHER_LINES


def test_stdin_gzipped_through_a_real_pipe(tmp_path: Path) -> None:
    gzipped = gzip.compress(WEATHER.encode())

    done = csv2lp_process("-", *WEATHER_ARGS, "-m", "weather", "-q", cwd=tmp_path, stdin=gzipped)

    assert (done.returncode, done.stdout.decode().splitlines(), done.stderr) == (0, WEATHER_LINES, b"")


def test_stdin_rejects_name_the_input_stdin(in_tmp: Path) -> None:
    result = run("-", *WEATHER_ARGS, "-q", stdin=WITH_REJECT.encode())

    assert result.exit_code == 3
    assert (in_tmp / "csv2lp-rejects.csv").read_text().splitlines()[1].startswith(f"<stdin>,4,{FLOAT_REASON},")


def test_globs_expand_sorted_and_patterns_keep_their_order(in_tmp: Path) -> None:
    for name in ("b", "c", "a"):
        write(in_tmp / f"{name}.csv", f"station,temp,time\n{name},1,2020-01-01T00:00:00Z\n")

    result = run("c.csv", "[ab].csv", "-m", "w", *WEATHER_ARGS, "-p", "s")

    assert result.stdout.splitlines() == [f"w,station={n} temp=1 1577836800" for n in ("c", "a", "b")]


def test_tab_delimiter(in_tmp: Path) -> None:
    write(in_tmp / "weather.tsv", WEATHER.replace(",", "\t"))

    result = run("weather.tsv", *WEATHER_ARGS, "-d", "tab")

    assert (result.exit_code, result.stdout.splitlines()) == (0, WEATHER_LINES)


# ---------------------------------------------------------------- outputs


def test_output_dot_gz_is_gzip(in_tmp: Path) -> None:
    write(in_tmp / "weather.csv", WEATHER)

    result = run("weather.csv", *WEATHER_ARGS, "-o", "out.lp.gz")

    assert (result.exit_code, result.stdout) == (0, "")
    assert gzip.decompress((in_tmp / "out.lp.gz").read_bytes()).decode().splitlines() == WEATHER_LINES


def test_output_file(in_tmp: Path) -> None:
    write(in_tmp / "weather.csv", WEATHER)

    run("weather.csv", *WEATHER_ARGS, "-o", "out.lp")

    assert (in_tmp / "out.lp").read_text() == "\n".join(WEATHER_LINES) + "\n"


@pytest.mark.parametrize(
    "precision, first, second",
    [
        ("s", 1297445400, -1),
        ("ms", 1297445400123, -500),
        ("us", 1297445400123456, -500000),
        ("ns", 1297445400123456789, -500000000),
    ],
)
def test_precision_floors_to_exact_integers(in_tmp: Path, precision: str, first: int, second: int) -> None:
    # Floored, never rounded: half a second before 1970 is -1 s, not 0.
    write(in_tmp / "t.csv", "v,time\n1,2011-02-11 17:30:00.123456789\n2,1969-12-31 23:59:59.5\n")

    result = run("t.csv", "-p", precision, "-q")

    assert result.stdout.splitlines() == [f"t v=1 {first}", f"t v=2 {second}"]


def test_summary_json_has_the_same_numbers_as_the_summary(in_tmp: Path) -> None:
    write(in_tmp / "weather.csv", WITH_REJECT + "west,nan,2020-01-01T00:00:03Z\n\n")

    result = run("weather.csv", *WEATHER_ARGS, "--summary-json", "run.json")

    summary = json.loads((in_tmp / "run.json").read_text())
    timing = {key: summary.pop(key) for key in ("seconds", "rows_per_second")}
    assert summary == {
        "files": 1,
        "rows_read": 4,
        "lines_written": 2,
        "rows_rejected": 2,
        "lines_not_written": 0,
        "rejects_unsaved": 0,
        "rejects_by_reason": {FLOAT_REASON: 1, "no field: every field cell is empty, NaN or infinite": 1},
        "fields_dropped": 0,
        "blank_lines": 1,
        "duplicate_points": 0,
        "duplicates_unchecked": 0,
        "points_nudged": 0,
        "unbalanced_quotes": 0,
        "lines_swallowed": 0,
        "bytes_written": len("\n".join(WEATHER_LINES) + "\n"),
        "rejects_files": ["csv2lp-rejects.csv"],
        "inferred_types": {},  # temp is declared, not inferred
        "stopped_at": None,
        "warnings": [],
    }
    assert timing["seconds"] >= 0
    assert summary["rows_read"] == summary["lines_written"] + summary["rows_rejected"]
    assert result.stderr.splitlines()[1:4] == ["2 lines written", "2 rows rejected", f"  1 × {FLOAT_REASON}"]


def test_the_summary_lists_the_ten_most_frequent_reasons_and_counts_the_others(in_tmp: Path) -> None:
    # Ragged rows of 4..16 cells, more rows the fewer cells: 13 reasons, each its own count.
    rows = [",".join(["x"] * cells) for cells in range(4, 17) for _ in range(20 - cells)]
    write(in_tmp / "ragged.csv", "a,b,time\n1,2,2020-01-01T00:00:00Z\n" + "\n".join(rows) + "\n")

    result = run("ragged.csv", "-m", "m", "--summary-json", "run.json")

    reasons = json.loads((in_tmp / "run.json").read_text())["rejects_by_reason"]
    assert len(reasons) == 13 and sum(reasons.values()) == len(rows)
    lines = result.stderr.splitlines()
    listed = lines[lines.index(f"{len(rows)} rows rejected") + 1:][:11]
    assert listed[:10] == [f"  {20 - cells} × ragged row: {cells} cells where the header has 3" for cells in range(4, 14)]
    assert listed[10] == f"  and 3 other reasons ({4 + 5 + 6} rows): --summary-json lists every reason"


def test_summary_json_is_written_when_the_run_fails(in_tmp: Path) -> None:
    result = run("missing.csv", "--summary-json", "run.json")

    assert result.exit_code == 1
    assert json.loads((in_tmp / "run.json").read_text())["rows_read"] == 0


def test_quiet_prints_nothing_on_success(in_tmp: Path) -> None:
    write(in_tmp / "weather.csv", WEATHER)

    result = run("weather.csv", *WEATHER_ARGS, "--quiet")

    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines() == WEATHER_LINES


def test_quiet_still_prints_errors(in_tmp: Path) -> None:
    result = run("missing.csv", "--quiet")

    assert (result.exit_code, result.stderr) == (1, "csv2lp: error: missing.csv: no such file.\n")


def test_reader_closing_the_pipe_ends_cleanly_without_a_traceback(tmp_path: Path) -> None:
    rows = "".join(f"s{i % 7},{i},2020-01-01T00:00:00Z\n" for i in range(100_000))
    write(tmp_path / "big.csv", "station,n,time\n" + rows)

    child = subprocess.Popen(["csv2lp", "big.csv", "-t", "station", "--block-size", "65536"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    first = child.stdout.readline()
    child.stdout.close()  # what `| head -1` does
    stderr = child.stderr.read().decode()
    status = child.wait(timeout=60)

    assert first == b"big,station=s0 n=0 1577836800000000000\n"
    # Lines the pipe took before its reader left: how many depends on the pipe's buffer.
    assert re.fullmatch(r"csv2lp: stdout was closed by its reader after [\d,]+ lines; stopped "
                        r"\(the rest of the input was not converted\)\.\n", stderr)
    assert status == 1
