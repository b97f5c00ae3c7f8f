"""Bad input: every malformed row is a counted reject with its reason and line, never a crash.

Each row case converts a small CSV with `csv2lp` and checks
  (a) the exact reject reason (the texts of converter/books/rowerrors.py),
  (b) the physical line number in the rejects CSV (quoted line breaks count),
  (c) that every other row became exactly its expected line, and
  (d) the books from --summary-json: rows_read == lines_written + rows_rejected.
Inputs that cannot be read at all end with exit status 1 and one message naming the file;
--on-error fail ends with status 4 and a message naming file:line, reason and value.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from converter.read import streams
from converter.cli import main

# A station tag, one field of every type, and a time; rows 2 and 4 are always good.
HEADER = "station,temp,count,ok,note,time"
ROW_A = "a,1.5,1,true,x,2020-01-01T00:00:00Z"
ROW_C = "c,3.5,3,false,z,2020-01-01T00:00:02Z"
LINE_A = 'w,station=a temp=1.5,count=1i,ok=true,note="x" 1577836800'
LINE_B = 'w,station=b temp=2.5,count=2i,ok=true,note="y" 1577836801'
LINE_C = 'w,station=c temp=3.5,count=3i,ok=false,note="z" 1577836802'
TYPES = ("--type", "temp=float", "--type", "count=integer", "--type", "ok=boolean", "--type", "note=string")
BASE = ("-m", "w", "-t", "station", *TYPES, "--precision", "s")
BY_STATION = ("--measurement-column", "station", *TYPES, "--precision", "s")

EXIT_OK, EXIT_ERROR, EXIT_REJECTS, EXIT_STOPPED = 0, 1, 3, 4


def dedent(text: str) -> bytes:
    return textwrap.dedent(text).lstrip("\n").encode()


def around(bad_row: bytes | str) -> bytes:
    """The bad row on line 3, between two good rows."""
    if isinstance(bad_row, str):
        bad_row = bad_row.encode()
    return f"{HEADER}\n{ROW_A}\n".encode() + bad_row + f"\n{ROW_C}\n".encode()


@dataclass
class Run:
    exit_code: int
    lines: list[str]
    stderr: str
    rejects: list[list[str]]  # rows of the rejects CSV, its header left out
    summary: dict

    @property
    def reject_lines_and_reasons(self) -> list[tuple[int, str]]:
        return [(int(row[1]), row[2]) for row in self.rejects]


@pytest.fixture
def csv2lp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run `csv2lp NAME ARGS... --summary-json ... --rejects ...` on `data`, in tmp_path."""
    monkeypatch.chdir(tmp_path)

    def run(data: bytes | None, *args: str, name: str = "in.csv") -> Run:
        if data is not None:
            (tmp_path / name).write_bytes(data)
        result = CliRunner().invoke(main, [name, *args, "--summary-json", "summary.json", "--rejects", "rejects.csv"])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        rejects: list[list[str]] = []
        if (tmp_path / "rejects.csv").exists():
            text = (tmp_path / "rejects.csv").read_text(encoding="utf-8", errors="surrogateescape")
            rejects = list(csv.reader(io.StringIO(text, newline="")))[1:]
        summary_path = tmp_path / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        return Run(result.exit_code, result.stdout.splitlines(), result.stderr, rejects, summary)

    return run


def assert_books_balance(run: Run) -> None:
    s = run.summary
    assert s["rows_read"] == s["lines_written"] + s["rows_rejected"]
    assert s["lines_written"] == len(run.lines)
    assert s["rows_rejected"] == sum(s["rejects_by_reason"].values())


# ---------------------------------------------------------------- rows that are rejected


@dataclass(frozen=True)
class BadRows:
    id: str
    data: bytes
    rejects: list[tuple[int, str]]  # (physical line, reason) in the rejects file, in order
    lines: list[str] = field(default_factory=lambda: [LINE_A, LINE_C])
    args: tuple[str, ...] = BASE
    summary: dict = field(default_factory=dict)  # further numbers the summary must show
    row: bytes | None = None  # the bad row, for cases that are one bad row on line 3


def middle(id: str, row: bytes | str, reason: str, **more) -> BadRows:
    """One bad row on line 3 between the good rows a and c."""
    data = around(row)
    return BadRows(id, data, [(3, reason)], row=data.split(b"\n")[2], **more)


def ragged(actual: int) -> str:
    return f"ragged row: {actual} cells where the header has 6"


BAD_ROWS = [
    # --- the shape of the row
    middle("too few cells", "b,2.5,2,true", ragged(4)),
    middle("too many cells", "b,2.5,2,true,y,2020-01-01T00:00:01Z,extra", ragged(7)),
    # Regression: pyarrow decodes a ragged row's text as strict UTF-8 before the handler sees
    # it, and a byte that is not UTF-8 used to stop the whole file.
    middle("ragged row holding a byte that is not UTF-8", b"b\xff,2.5", ragged(2)),
    BadRows(
        "ragged last row without a trailing newline",
        dedent(f"""
            {HEADER}
            {ROW_A}
            {ROW_C}
            d,4.5""").rstrip(b"\n"),
        [(4, ragged(2))],
    ),
    BadRows(
        # The quote opens a value that runs to the end of the file: the rows it swallows are
        # not rows any more, but they are not lost either: they sit in the reject's last cell,
        # and the reason says how far the quote ran (quotes.py).
        "unbalanced quote in the middle of the file swallows the rest",
        dedent(f"""
            {HEADER}
            {ROW_A}
            b,2.5,2,true,"y,2020-01-01T00:00:01Z
            {ROW_C}
            """),
        [(3, "unbalanced quote: the quote opened at line 3 never closes: the cell runs to the end of the input "
             "(line 4): 1 line read as one cell")],
        lines=[LINE_A],
    ),
    BadRows(
        "unbalanced quote in the last row",
        dedent(f"""
            {HEADER}
            {ROW_A}
            {ROW_C}
            d,4.5,4,true,"w,2020-01-01T00:00:03Z
            """),
        [(4, ragged(5))],
    ),
    BadRows(
        "unbalanced quote in the time of the last row",
        dedent(f"""
            {HEADER}
            {ROW_A}
            {ROW_C}
            d,4.5,4,true,w,"2020-01-01T00:00:03Z
            """),
        [(4, "unparseable time in column 'time'")],
    ),
    BadRows(
        # Line numbers go on counting the quoted line break: the row after it is on line 6.
        "quoted line break in a numeric cell",
        dedent(f"""
            {HEADER}
            {ROW_A}
            b,"2
            5",2,true,y,2020-01-01T00:00:01Z
            {ROW_C}
            d,4.5,four,true,w,2020-01-01T00:00:03Z
            """),
        [(3, "invalid float in column 'temp'"), (6, "invalid integer in column 'count'")],
    ),
    # --- bytes that are not UTF-8 text
    middle("invalid UTF-8 in a tag", b"b\xff,2.5,2,true,y,2020-01-01T00:00:01Z",
           "invalid UTF-8 in column 'station'"),
    middle("invalid UTF-8 in a string field", b"b,2.5,2,true,y\xe9,2020-01-01T00:00:01Z",
           "invalid UTF-8 in column 'note'"),
    middle("invalid UTF-8 in a numeric field", b"b,2.5\xff,2,true,y,2020-01-01T00:00:01Z",
           "invalid float in column 'temp'"),
    # --- characters line protocol cannot carry
    middle("NUL in a tag", b"b\x00,2.5,2,true,y,2020-01-01T00:00:01Z",
           "control character in tag column 'station'"),
    middle("escape character in a tag", b"b\x1b[0m,2.5,2,true,y,2020-01-01T00:00:01Z",
           "control character in tag column 'station'"),
    middle("tab in a tag", "b\tq,2.5,2,true,y,2020-01-01T00:00:01Z",
           "control character in tag column 'station'"),
    BadRows(
        "quoted line break in a tag",
        dedent(f"""
            {HEADER}
            {ROW_A}
            "b
            q",2.5,2,true,y,2020-01-01T00:00:01Z
            {ROW_C}
            """),
        [(3, "control character in tag column 'station'")],
    ),
    BadRows(
        "line break in a string field",
        dedent(f"""
            {HEADER}
            {ROW_A}
            b,2.5,2,true,"first line
            second line",2020-01-01T00:00:01Z
            {ROW_C}
            d,4.5,4,maybe,w,2020-01-01T00:00:03Z
            """),
        [(3, "line break in string column 'note'"), (6, "invalid boolean in column 'ok'")],
    ),
    middle("tag value ending in a backslash", "b\\,2.5,2,true,y,2020-01-01T00:00:01Z",
           "backslash at the end or before ',', '=' or space in tag column 'station'"),
    middle("backslash before a comma in a tag", '"b\\,q",2.5,2,true,y,2020-01-01T00:00:01Z',
           "backslash at the end or before ',', '=' or space in tag column 'station'"),
    middle("backslash before a space in a tag", "b\\ q,2.5,2,true,y,2020-01-01T00:00:01Z",
           "backslash at the end or before ',', '=' or space in tag column 'station'"),
    # --- times
    middle("empty time", "b,2.5,2,true,y,", "empty time in column 'time'"),
    middle("unparseable time", "b,2.5,2,true,y,yesterday", "unparseable time in column 'time'"),
    middle("month 13", "b,2.5,2,true,y,2020-13-01T00:00:01Z", "unparseable time in column 'time'"),
    middle("time in the year 1600", "b,2.5,2,true,y,1600-01-01T00:00:01Z",
           "out of range time in column 'time' (line protocol at -p s: 1677-09-21T00:12:44Z to 2262-04-11T23:47:16Z)"),
    middle("time in the year 3000", "b,2.5,2,true,y,3000-01-01 00:00:01",
           "out of range time in column 'time' (line protocol at -p s: 1677-09-21T00:12:44Z to 2262-04-11T23:47:16Z)"),
    BadRows(
        "epoch seconds that are not a number",
        dedent("""
            station,temp,time
            a,1.5,1577836800
            b,2.5,1577836801.5.
            c,3.5,1577836802
            """),
        [(3, "unparseable time in column 'time'")],
        lines=["w,station=a temp=1.5 1577836800", "w,station=c temp=3.5 1577836802"],
        args=("-m", "w", "-t", "station", "--time-format", "epoch_s", "--precision", "s"),
    ),
    # --- numbers and booleans
    middle("integer overflow", "b,2.5,9223372036854775808,true,y,2020-01-01T00:00:01Z",
           "invalid integer in column 'count'"),
    middle("integer underflow", "b,2.5,-9223372036854775809,true,y,2020-01-01T00:00:01Z",
           "invalid integer in column 'count'"),
    middle("float garbage", "b,1.2.3,2,true,y,2020-01-01T00:00:01Z", "invalid float in column 'temp'"),
    middle("1.5 in an integer column", "b,2.5,1.5,true,y,2020-01-01T00:00:01Z",
           "invalid integer in column 'count'"),
    middle("negative number in an unsigned column", "b,2.5,-2,true,y,2020-01-01T00:00:01Z",
           "invalid unsigned in column 'count'",
           lines=[LINE_A.replace("count=1i", "count=1u"), LINE_C.replace("count=3i", "count=3u")],
           args=(*BASE, "--type", "count=unsigned")),
    middle("unsigned overflow", "b,2.5,18446744073709551616,true,y,2020-01-01T00:00:01Z",
           "invalid unsigned in column 'count'",
           lines=[LINE_A.replace("count=1i", "count=1u"), LINE_C.replace("count=3i", "count=3u")],
           args=(*BASE, "--type", "count=unsigned")),
    middle("boolean garbage", "b,2.5,2,maybe,y,2020-01-01T00:00:01Z", "invalid boolean in column 'ok'"),
    middle("row whose fields are all empty", "b,,,,,2020-01-01T00:00:01Z",
           "no field: every field cell is empty, NaN or infinite"),
    BadRows(
        # Only values left out of a written line count as dropped: row 5 is a reject.
        "NaN and Inf are left out of their lines, and counted",
        dedent(f"""
            {HEADER}
            {ROW_A}
            b,NaN,2,true,y,2020-01-01T00:00:01Z
            {ROW_C}
            d,-inf,,,,2020-01-01T00:00:03Z
            """),
        [(5, "no field: every field cell is empty, NaN or infinite")],
        lines=[LINE_A, LINE_B.replace("temp=2.5,", ""), LINE_C],
        summary={"fields_dropped": 1},
    ),
    # --- the measurement column
    middle("empty measurement", ",2.5,2,true,y,2020-01-01T00:00:01Z", "empty measurement in column 'station'",
           lines=[LINE_A.replace("w,station=", ""), LINE_C.replace("w,station=", "")], args=BY_STATION),
    middle("measurement starting with '#'", "#b,2.5,2,true,y,2020-01-01T00:00:01Z",
           "measurement starting with '#' in column 'station'",
           lines=[LINE_A.replace("w,station=", ""), LINE_C.replace("w,station=", "")], args=BY_STATION),
    middle("control character in the measurement column", "b\x07,2.5,2,true,y,2020-01-01T00:00:01Z",
           "control character in measurement column 'station'",
           lines=[LINE_A.replace("w,station=", ""), LINE_C.replace("w,station=", "")], args=BY_STATION),
    # --- the file's own shape: the rows around a bad row keep their line numbers
    BadRows(
        "blank lines are counted apart, not as rows",
        (f"{HEADER}\n\n{ROW_A}\n\n\nb,2.5,2,true,y,later\n{ROW_C}\n\n").encode(),
        [(6, "unparseable time in column 'time'")],
        summary={"blank_lines": 4, "rows_read": 3},
    ),
    BadRows(
        "a row of only delimiters is a blank line",
        around(",,,,,"),
        [],
        summary={"blank_lines": 1, "rows_read": 2},
    ),
    BadRows(
        "BOM and CRLF line ends",
        b"\xef\xbb\xbf" + around("b,2.5,2,true,y,yesterday").replace(b"\n", b"\r\n"),
        [(3, "unparseable time in column 'time'")],
    ),
    BadRows(
        "CRLF with a quoted CRLF inside a value",
        b"\xef\xbb\xbf" + dedent(f"""
            {HEADER}
            {ROW_A}
            b,2.5,2,true,"y
            y",2020-01-01T00:00:01Z
            {ROW_C}
            d,4.5,4,true,w,
            """).replace(b"\n", b"\r\n"),
        [(3, "line break in string column 'note'"), (6, "empty time in column 'time'")],
    ),
]


@pytest.mark.parametrize("case", BAD_ROWS, ids=[c.id for c in BAD_ROWS])
def test_bad_row_is_rejected_with_its_reason_and_line(csv2lp, case: BadRows) -> None:
    run = csv2lp(case.data, *case.args)

    assert run.reject_lines_and_reasons == case.rejects
    assert all(row[0] == "in.csv" for row in run.rejects)
    assert run.lines == case.lines
    assert run.exit_code == (EXIT_REJECTS if case.rejects else EXIT_OK)
    assert run.summary["rejects_by_reason"] == dict(Counter(reason for _, reason in case.rejects))
    for key, value in case.summary.items():
        assert run.summary[key] == value, key
    assert_books_balance(run)


def test_at_least_thirty_distinct_malformed_inputs() -> None:
    assert len({case.data for case in BAD_ROWS}) >= 30


def test_rejects_file_holds_the_original_cells_byte_for_byte(csv2lp) -> None:
    run = csv2lp(around(b'"b\xff, ""q""",2.5,2,true,y,2020-01-01T00:00:01Z'), *BASE)

    assert run.rejects == [
        ["in.csv", "3", "invalid UTF-8 in column 'station'", 'b\udcff, "q"',
         'b\udcff, "q"', "2.5", "2", "true", "y", "2020-01-01T00:00:01Z"],
    ]


def test_rejects_file_holds_a_ragged_row_split_into_its_cells(csv2lp) -> None:
    run = csv2lp(around('b,"2,5",2'), *BASE)

    assert run.rejects == [["in.csv", "3", ragged(3), "", "b", "2,5", "2"]]


def test_rejects_file_header_is_the_lead_columns_then_the_input_header(csv2lp, tmp_path: Path) -> None:
    csv2lp(around("b,2.5,2,true,y,"), *BASE)

    first_line = (tmp_path / "rejects.csv").read_text().splitlines()[0]
    assert first_line == "file,line,reason,value," + HEADER


def test_a_clean_file_without_trailing_newline_converts_every_row(csv2lp, tmp_path: Path) -> None:
    run = csv2lp(f"{HEADER}\n{ROW_A}\n{ROW_C}".encode(), *BASE)

    assert (run.exit_code, run.lines, run.rejects) == (EXIT_OK, [LINE_A, LINE_C], [])
    assert not (tmp_path / "rejects.csv").exists()
    assert_books_balance(run)


def test_header_only_file_is_a_run_of_zero_rows(csv2lp) -> None:
    run = csv2lp(f"{HEADER}\n".encode(), *BASE)

    assert (run.exit_code, run.lines) == (EXIT_OK, [])
    assert (run.summary["rows_read"], run.summary["lines_written"], run.summary["rows_rejected"]) == (0, 0, 0)


def test_every_reject_kind_in_one_file_balances_the_books(csv2lp) -> None:
    rows = [case.row for case in BAD_ROWS if case.row is not None and case.args is BASE]
    data = f"{HEADER}\n{ROW_A}\n".encode() + b"\n".join(rows) + f"\n{ROW_C}\n".encode()

    run = csv2lp(data, *BASE)

    assert run.lines == [LINE_A, LINE_C]
    assert run.summary["rows_read"] == len(rows) + 2
    assert run.summary["rows_rejected"] == len(rows)
    assert [line for line, _ in run.reject_lines_and_reasons] == list(range(3, 3 + len(rows)))
    assert_books_balance(run)


# ---------------------------------------------------------------- --on-error fail and skip


FAIL_INPUT = dedent(f"""
    {HEADER}
    {ROW_A}
    b,2.5,2,true,y,2020-01-01T00:00:01Z
    c,3.5,three,false,z,2020-01-01T00:00:02Z
    d,4.5,4,true,w
    """)


def test_on_error_fail_stops_at_the_first_bad_row_with_file_line_reason_and_value(csv2lp, tmp_path: Path) -> None:
    run = csv2lp(FAIL_INPUT, *BASE, "--on-error", "fail", "--quiet")

    assert run.exit_code == EXIT_STOPPED
    assert run.stderr == (
        "csv2lp: error: in.csv:4: invalid integer in column 'count': 'three'. To fix: correct the value, or "
        "declare the column's type (--type count=string) if it holds text. (--on-error fail stops at the "
        "first bad row; --on-error quarantine saves bad rows to a rejects file and goes on.)\n"
    )
    assert run.lines == [LINE_A, LINE_B]  # only the rows before the bad one
    assert not (tmp_path / "rejects.csv").exists()
    assert run.summary["stopped_at"] == run.stderr.removeprefix("csv2lp: error: ").rstrip("\n")
    assert (run.summary["rows_read"], run.summary["lines_written"], run.summary["rows_rejected"]) == (3, 2, 1)
    assert_books_balance(run)


def test_on_error_fail_names_a_ragged_row_that_comes_first(csv2lp) -> None:
    data = around("b,2.5") + b"e,oops,5,true,v,2020-01-01T00:00:04Z\n"

    run = csv2lp(data, *BASE, "--on-error", "fail", "-q")

    assert run.exit_code == EXIT_STOPPED
    assert run.stderr.startswith(
        f"csv2lp: error: in.csv:3: {ragged(2)}: 'b,2.5'. To fix: fix the row's delimiters or quotes.")
    assert run.lines == [LINE_A]
    assert_books_balance(run)


def test_on_error_fail_shows_the_bytes_of_a_ragged_row_that_is_not_utf8(csv2lp) -> None:
    run = csv2lp(around(b"b\xff,2.5"), *BASE, "--on-error", "fail", "-q")

    assert run.exit_code == EXIT_STOPPED
    assert run.stderr.startswith(f"csv2lp: error: in.csv:3: {ragged(2)}: 'b\ufffd,2.5'. To fix:")
    assert run.lines == [LINE_A]


def test_on_error_fail_in_a_later_block_keeps_every_earlier_line(csv2lp) -> None:
    good = "".join(f"s{i},{i}.5,{i},true,n,2020-01-01T00:00:00Z\n" for i in range(3000))
    data = f"{HEADER}\n{good}bad,x,1,true,n,2020-01-01T00:00:00Z\n{good}".encode()

    run = csv2lp(data, *BASE, "--on-error", "fail", "--block-size", "65536", "-q")

    assert run.exit_code == EXIT_STOPPED
    assert run.stderr.startswith("csv2lp: error: in.csv:3002: invalid float in column 'temp': 'x'.")
    assert len(run.lines) == 3000
    assert run.lines[-1] == 'w,station=s2999 temp=2999.5,count=2999i,ok=true,note="n" 1577836800'
    assert_books_balance(run)


def test_on_error_skip_counts_bad_rows_and_writes_no_rejects_file(csv2lp, tmp_path: Path) -> None:
    run = csv2lp(FAIL_INPUT, *BASE, "--on-error", "skip")

    assert run.exit_code == EXIT_REJECTS
    assert run.lines == [LINE_A, LINE_B]
    assert run.summary["rejects_by_reason"] == {"invalid integer in column 'count'": 1, ragged(5): 1}
    assert run.summary["rejects_files"] == []
    assert not (tmp_path / "rejects.csv").exists()
    assert_books_balance(run)


# ---------------------------------------------------------------- inputs that cannot be read


def gzip_rows(n: int) -> bytes:
    return gzip.compress(f"{HEADER}\n".encode() + (ROW_A + "\n").encode() * n)


@dataclass(frozen=True)
class Unreadable:
    id: str
    name: str
    data: bytes | None  # None: the test makes `name` itself
    message: str
    args: tuple[str, ...] = BASE


UNREADABLE = [
    Unreadable("empty file", "in.csv", b"",
               "in.csv: the file is empty; a CSV file with a header line is expected."),
    Unreadable("only a BOM and a line break", "in.csv", b"\xef\xbb\xbf\r\n",
               "in.csv: the file is empty; a CSV file with a header line is expected."),
    Unreadable("gzip cut before its first line break", "in.csv.gz", gzip_rows(2000)[:12],
               "in.csv.gz: cannot read (gzip): Truncated compressed stream. Check the file and its extension."),
    Unreadable("corrupt gzip", "in.csv.gz", b"\x1f\x8b" + b"garbage" * 50,
               "in.csv.gz: cannot read (gzip): zlib inflate failed: unknown compression method. "
               "Check the file and its extension."),
    Unreadable("plain text named .gz", "in.csv.gz", around("b,2.5,2,true,y,2020-01-01T00:00:01Z"),
               "in.csv.gz: cannot read (gzip): zlib inflate failed: incorrect header check. "
               "Check the file and its extension."),
    Unreadable("corrupt bz2", "in.csv.bz2", b"BZh9" + b"\x00" * 100,
               "in.csv.bz2: cannot read (bz2): bz2 decompress failed: invalid bz2 data. "
               "Check the file and its extension."),
    Unreadable("gzip data without the .gz name", "in.csv", gzip_rows(3),
               "in.csv: the file is compressed (.gz) but its name does not end in .gz; rename it so that "
               "csv2lp decompresses it."),
    Unreadable("bz2 data without the .bz2 name", "in.csv", bz2.compress(around("b,,,,,")),
               "in.csv: the file is compressed (.bz2) but its name does not end in .bz2; rename it so that "
               "csv2lp decompresses it."),
    Unreadable("binary file", "in.csv", bytes(range(256)) * 8,
               "in.csv: the header line holds NUL bytes: this is not UTF-8 CSV text (a binary file, or UTF-16 "
               "text?). Re-export it as UTF-8, e.g. iconv -f UTF-16 -t UTF-8."),
    Unreadable("UTF-16 text", "in.csv", around("b,2.5,2,true,y,2020-01-01T00:00:01Z").decode().encode("utf-16"),
               "in.csv: the header line holds NUL bytes: this is not UTF-8 CSV text (a binary file, or UTF-16 "
               "text?). Re-export it as UTF-8, e.g. iconv -f UTF-16 -t UTF-8."),
    Unreadable("Latin-1 header", "in.csv",
               "station,temp,température,time\na,1,2,2020-01-01T00:00:00Z\n".encode("latin-1"),
               "in.csv: the header is not valid UTF-8 (column 3: b'temp\\xe9rature'); re-export the file as UTF-8."),
    Unreadable("directory", "in.csv", None,
               "in.csv: is a directory; give the files in it (for example in.csv/*.csv)."),
    Unreadable("missing file", "gone.csv", None, "gone.csv: no such file."),
    Unreadable("glob that matches nothing", "*.tsv", None, "*.tsv: the pattern matches no file."),
    Unreadable("duplicate header names", "in.csv", b"station,temp,temp,time\na,1,2,2020-01-01T00:00:00Z\n",
               "in.csv: the header names column 'temp' twice (columns 2 and 3); rename one of them in the header."),
    Unreadable("missing tag column", "in.csv", around("b,2.5,2,true,y,2020-01-01T00:00:01Z"),
               "in.csv: column 'statoin' (tag) is not in the header. Did you mean 'station'? "
               "Columns: 'station', 'temp', 'count', 'ok', 'note', 'time'.",
               args=("-t", "statoin")),
    Unreadable("missing time column", "in.csv", around("b,2.5,2,true,y,2020-01-01T00:00:01Z"),
               "in.csv: column 'timestamp' (time) is not in the header. Did you mean 'time'? "
               "Columns: 'station', 'temp', 'count', 'ok', 'note', 'time'.",
               args=("--time-column", "timestamp")),
    Unreadable("missing field column, nothing close", "in.csv", around("b,2.5,2,true,y,2020-01-01T00:00:01Z"),
               "in.csv: column 'pressure' (field) is not in the header. "
               "Columns: 'station', 'temp', 'count', 'ok', 'note', 'time'.",
               args=("-f", "pressure:float")),
]


@pytest.mark.parametrize("case", UNREADABLE, ids=[c.id for c in UNREADABLE])
def test_unreadable_input_is_one_error_naming_the_file(csv2lp, tmp_path: Path, case: Unreadable) -> None:
    if case.id == "directory":
        (tmp_path / case.name).mkdir()
    run = csv2lp(case.data, *case.args, name=case.name)

    assert run.exit_code == EXIT_ERROR
    assert run.stderr == f"csv2lp: error: {case.message}\n"
    assert run.lines == []
    assert not (tmp_path / "rejects.csv").exists()


def test_mapping_is_checked_against_every_header_before_any_row_is_read(csv2lp, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(around("b,2.5,2,true,y,2020-01-01T00:00:01Z"))
    (tmp_path / "b.csv").write_bytes(b"station,temps,count,ok,note,time\nz,1,1,true,n,2020-01-01T00:00:00Z\n")

    run = csv2lp(None, *BASE, name="*.csv")

    assert run.exit_code == EXIT_ERROR
    assert run.stderr == (
        "csv2lp: error: b.csv: column 'temp' (--type) is not in the header. Did you mean 'temps'? "
        "Columns: 'station', 'temps', 'count', 'ok', 'note', 'time'.\n"
    )
    assert run.lines == []  # a.csv is fine, but nothing is written before every header is checked


def _compressed(data: bytes, codec: str) -> bytes:
    out = pa.BufferOutputStream()
    with pa.CompressedOutputStream(out, codec) as stream:
        stream.write(data)
    return out.getvalue().to_pybytes()


def _readable_prefix(data: bytes, codec: str) -> bytes:
    """What a decompressor can make of a cut compressed file: read in small pieces until it fails."""
    stream, pieces = pa.CompressedInputStream(pa.BufferReader(data), codec), []
    try:
        while piece := stream.read(4096):
            pieces.append(piece)
    except OSError:
        pass
    return b"".join(pieces)


@pytest.mark.parametrize("codec, suffix", [("gzip", ".gz"), ("bz2", ".bz2"), ("zstd", ".zst")])
def test_a_cut_compressed_file_converts_every_whole_row_before_the_cut_and_rejects_the_cut_one(
        csv2lp, codec, suffix) -> None:
    rows = [f"s{i},{i}.5,{i},true,n,2020-01-01T00:00:00Z" for i in range(60_000)]
    whole = _compressed(f"{HEADER}\n".encode() + "".join(row + "\n" for row in rows).encode(), codec)
    cut = whole[: len(whole) // 2]
    readable = _readable_prefix(cut, codec).decode()
    whole_rows = readable.count("\n") - 1  # the header's line break too
    assert 0 < whole_rows < len(rows) and not readable.endswith("\n")  # the cut falls inside a row

    run = csv2lp(cut, *BASE, "--block-size", "65536", "--quiet", name="in.csv" + suffix)

    assert run.exit_code == EXIT_ERROR
    written = len(run.lines)
    # Lost: at most the text of the one read that met the damage (16 KiB, streams.py), never a
    # block Arrow had read ahead (2 blocks of 64 KiB, ~3,200 rows, before csv2lp held the failure back).
    assert whole_rows - written <= streams.DECOMPRESSED_PIECE // len(rows[0])
    cut_line = written + 2
    assert run.stderr == (f"csv2lp: error: in.csv{suffix}: cannot decompress past line {cut_line}: Truncated "
                          f"compressed stream. The file is damaged or incomplete: every row before line {cut_line} "
                          f"was read, line {cut_line} is cut off (rejected), and the rest of the file is lost.\n")
    assert run.lines == [f'w,station=s{i} temp={i}.5,count={i}i,ok=true,note="n" 1577836800' for i in range(written)]
    [reject] = run.rejects
    assert reject[1:3] == [str(cut_line), "cut off: the compressed file is damaged or incomplete inside this row"]
    cells = ",".join(reject[4:]).rstrip(",")
    assert cells and rows[written].startswith(cells) and cells != rows[written]
    assert_books_balance(run)


def test_a_cut_gzip_on_stdin_ends_the_same_way(tmp_path, monkeypatch) -> None:
    rows = "".join(f"s{i},{i}.5,{i},true,n,2020-01-01T00:00:00Z\n" for i in range(20_000))
    whole = gzip.compress(f"{HEADER}\n{rows}".encode())
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["-", *BASE, "--quiet", "--on-error", "skip"], input=whole[:-2000])
    assert result.exit_code == EXIT_ERROR
    written = len(result.stdout.splitlines())
    assert 19_000 < written < 20_000
    assert f"<stdin>: cannot decompress past line {written + 2}: " in result.stderr


@pytest.mark.parametrize("data", [b"\x1f\x8b", gzip.compress(f"{HEADER}\n{ROW_A}\n".encode())[:12]])
def test_damaged_gzip_on_stdin_is_reported_as_unreadable_not_a_traceback(data, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["-", *BASE], input=data)
    assert isinstance(result.exception, SystemExit) and result.exit_code == EXIT_ERROR, result.exception
    assert result.stderr == "csv2lp: error: <stdin>: cannot read (gzip): Truncated compressed stream. " \
                            "Check what is piped in.\n"


def test_an_unbalanced_quote_that_runs_past_a_block_is_one_rejected_row_to_the_end(csv2lp) -> None:
    """Regression (issue 24): the rest of the file was lost with "a quoted value does not end within
    64 KiB" (exit 1). A quote that never closes makes, by CSV's rules, one value of every line after
    it: one rejected row that runs to the end of the input, read at a memory of a few blocks."""
    good = "".join(f"s{i},{i}.5,{i},true,n,2020-01-01T00:00:00Z\n" for i in range(100))
    rest = "".join(f"t{i},{i}.5,{i},true,n,2020-01-01T00:00:00Z\n" for i in range(5000))
    data = f'{HEADER}\n{good}b,2.5,2,true,"y,2020-01-01T00:00:01Z\n{rest}'.encode()

    run = csv2lp(data, *BASE, "--block-size", "65536", "--quiet")

    reason = ("row longer than the block size (64 KiB): a quoted value in it runs over 5,001 lines, to the end of "
              "the input (its quote never closes)")
    assert run.exit_code == EXIT_REJECTS
    assert len(run.lines) == 100
    assert run.reject_lines_and_reasons == [(102, reason)]
    # The rejects file keeps the row's first KiB: its cells as far as they go.
    assert run.rejects[0][4:8] == ["b", "2.5", "2", "true"]
    assert run.rejects[0][8].startswith("y,2020-01-01T00:00:01Z\nt0,0.5,0,true,n,") and len(run.rejects[0][8]) < 1024
    assert_books_balance(run)


def test_a_quoted_value_longer_than_a_block_is_one_rejected_row_and_the_rows_after_it_go_on(csv2lp) -> None:
    good = "".join(f"s{i},{i}.5,{i},true,n,2020-01-01T00:00:00Z\n" for i in range(100))
    long_text = "line of a long note\n" * 10_000  # 200 KB, three blocks of 64 KiB
    after = "".join(f"t{i},{i}.5,{i},true,n,2020-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z\n" for i in range(50))
    data = f'{HEADER}\n{good}b,2.5,2,true,"{long_text}",2020-01-01T00:00:01Z\n{after}'.encode()

    run = csv2lp(data, *BASE, "--block-size", "65536", "--quiet")

    assert run.exit_code == EXIT_REJECTS
    assert run.reject_lines_and_reasons == [
        (102, "row longer than the block size (64 KiB): a quoted value in it runs over 10,001 lines")]
    assert len(run.lines) == 150 and run.lines[-1].startswith("w,station=t49 ")
    assert (run.summary["rows_read"], run.summary["rows_rejected"]) == (151, 1)
    assert_books_balance(run)
