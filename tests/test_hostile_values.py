"""Hostile values (issue 16, classes 4, 6, 7 and 8), each through the real CLI as a subprocess.

- Unbalanced quotes: reported where they opened and how far they ran, never written as a value.
- Lines InfluxDB refuses or mangles: rejected with a reason naming the limit; the lines csv2lp
  does write are stored as meant by the real servers (InfluxDB 1.6.7, and 2.8.0 when built),
  and the naive lines it refuses are refused (or mangled) by them, which is why it refuses them.
- No silent value change: integers a float would change; a last line without its line break.
- Columns left out: a column with values that reaches no line is named in a warning.

Each case asserts the exit status, the exact message, the counts and the lines.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.data import REPO
from support.influxdb import InfluxDB1Server, InfluxDBError, quote_ident

from converter import cli

PYTHON = sys.executable
TIMEOUT_S = 120
FIRST_LINE = re.compile(r"^([\d,]+) rows? read from (\d+) files? in \d+\.\d\d s \([\d,]+ rows/s\)$")


@dataclass
class Run:
    code: int
    lines: list[str]  # stdout split at "\n" (a line may hold other Unicode line separators)
    stderr: list[str]
    summary: dict
    rejects: list[list[str]]  # rows of the rejects file, header left out

    @property
    def rows_read(self) -> int:
        match = FIRST_LINE.match(self.stderr[0])
        assert match, self.stderr
        return int(match.group(1).replace(",", ""))

    @property
    def books(self) -> list[str]:
        """The summary after its first line (which holds the time taken)."""
        return self.stderr[1:]


def run(tmp_path: Path, data: str | bytes | None, *args: str, name: str = "in.csv", command: str = "convert") -> Run:
    """`csv2lp convert NAME ARGS` in tmp_path as a child process, with --summary-json and --rejects."""
    if data is not None:
        (tmp_path / name).write_bytes(data.encode() if isinstance(data, str) else data)
    for leftover in ("summary.json", "rejects.csv"):
        (tmp_path / leftover).unlink(missing_ok=True)
    extra = ["--summary-json", "summary.json", "--rejects", "rejects.csv"] if command == "convert" else []
    done = subprocess.run([PYTHON, "-m", "converter", command, name, *args, *extra], cwd=tmp_path,
                          capture_output=True, timeout=TIMEOUT_S, env={**os.environ, "PYTHONPATH": str(REPO)})
    stderr = done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    summary = json.loads((tmp_path / "summary.json").read_text()) if (tmp_path / "summary.json").exists() else {}
    rejects: list[list[str]] = []
    if (tmp_path / "rejects.csv").exists():
        text = (tmp_path / "rejects.csv").read_text(encoding="utf-8", errors="surrogateescape")
        rejects = list(csv.reader(io.StringIO(text, newline="")))[1:]
    text = done.stdout.decode("utf-8", "surrogateescape")
    return Run(done.returncode, text.split("\n")[:-1] if text else [], stderr.splitlines(), summary, rejects)


def numbered_rows(count: int) -> list[str]:
    """`id,name,value,time` rows 1..count: row i is on line i + 1."""
    return [f"{i},n{i % 7},{i * 0.5},2020-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
            for i in range(1, count + 1)]


def with_quote(rows: list[str], line: int, *, before: bool) -> None:
    """Put a stray quote before (or after) the name cell of the row on `line`."""
    cells = rows[line - 2].split(",")
    cells[1] = '"' + cells[1] if before else cells[1] + '"'
    rows[line - 2] = ",".join(cells)


def csv_text(rows: list[str], header: str = "id,name,value,time") -> str:
    return header + "\n" + "\n".join(rows) + "\n"


# ---------------------------------------------------------------- class 4: unbalanced quotes


def test_a_stray_quote_is_reported_where_it_opened_and_how_far_it_ran(tmp_path):
    rows = numbered_rows(2000)
    with_quote(rows, 12, before=True)
    with_quote(rows, 1502, before=False)

    result = run(tmp_path, csv_text(rows), "-m", "m")

    reason = "unbalanced quote: the quote opened at line 12 runs to line 1,502: 1,490 lines read as one cell"
    assert result.code == cli.EXIT_REJECTS
    assert result.rows_read == 510
    assert result.books == [
        "509 lines written",
        "1 row rejected",
        f"  1 × {reason}",
        "1,490 lines of the input read into 1 rejected row by unbalanced quotes: the rows on them were not "
        "converted (see the reasons above)",
        "rejected rows saved to rejects.csv",
    ]
    assert (result.summary["unbalanced_quotes"], result.summary["lines_swallowed"]) == (1, 1490)
    assert result.summary["rejects_by_reason"] == {reason: 1}
    [reject] = result.rejects
    assert reject[:3] == ["in.csv", "12", reason]
    assert reject[5].count("\n") == 1490  # the swallowed rows are kept, inside the rejected cell
    ids = [int(re.search(r"id=(\d+)", line).group(1)) for line in result.lines]
    assert ids == list(range(1, 11)) + list(range(1502, 2001))  # lines 2..11 and 1503..2001


def test_with_control_chars_replace_the_swallowed_rows_are_still_never_written_as_a_value(tmp_path):
    rows = numbered_rows(2000)
    with_quote(rows, 12, before=True)
    with_quote(rows, 1502, before=False)

    result = run(tmp_path, csv_text(rows), "-m", "m", "--control-chars", "replace")

    assert result.code == cli.EXIT_REJECTS  # was 0, with 1,490 rows inside one string field
    assert len(result.lines) == 509 and not any("2020-01-01T00:00:12Z" in line for line in result.lines)
    assert result.summary["lines_swallowed"] == 1490


def test_a_quote_that_never_closes_runs_to_the_end_of_the_input(tmp_path):
    rows = numbered_rows(2000)
    with_quote(rows, 12, before=True)

    result = run(tmp_path, csv_text(rows), "-m", "m", "--control-chars", "replace")

    reason = ("unbalanced quote: the quote opened at line 12 never closes: the cell runs to the end of the input "
              "(line 2,001): 1,989 lines read as one cell")
    assert result.code == cli.EXIT_REJECTS
    assert (result.rows_read, len(result.lines)) == (11, 10)
    assert result.books[2] == f"  1 × {reason}"
    assert (result.summary["unbalanced_quotes"], result.summary["lines_swallowed"]) == (1, 1989)


def test_a_runaway_cell_that_swallowed_half_a_line_is_caught_too(tmp_path):
    """The quote opens in the name cell of line 3 and closes in the name cell of line 4: one row of
    the right width, whose name holds the rest of line 3 and the start of line 4."""
    rows = numbered_rows(4)
    with_quote(rows, 3, before=True)
    with_quote(rows, 4, before=False)

    result = run(tmp_path, csv_text(rows), "-m", "m", "--control-chars", "replace")

    assert result.code == cli.EXIT_REJECTS
    assert [reject[2] for reject in result.rejects] == [
        "unbalanced quote: the quote opened at line 3 runs to line 4: 1 line read as one cell"]
    assert [line.split(" ")[1].split(",")[0] for line in result.lines] == ["id=1", "id=4"]


def test_a_quoted_multi_line_value_is_no_runaway(tmp_path):
    """An address over two lines, one comma in it, in a file of four columns: a value, written
    with its line break replaced as --control-chars replace asks."""
    data = 'id,address,value,time\n1,"12 Main St,\nSpringfield",1.5,2020-01-01T00:00:00Z\n2,x,2.5,2020-01-01T00:00:01Z\n'

    result = run(tmp_path, data, "-m", "m", "--control-chars", "replace")

    assert result.code == cli.EXIT_OK
    assert result.lines == ['m id=1,address="12 Main St, Springfield",value=1.5 1577836800000000000',
                            'm id=2,address="x",value=2.5 1577836801000000000']
    assert result.summary["unbalanced_quotes"] == 0


def test_on_error_fail_stops_at_the_runaway_row_naming_its_span(tmp_path):
    rows = numbered_rows(100)
    with_quote(rows, 12, before=True)
    with_quote(rows, 50, before=False)

    result = run(tmp_path, csv_text(rows), "-m", "m", "--on-error", "fail")

    assert result.code == cli.EXIT_STOPPED
    assert result.stderr[0] == (
        "csv2lp: error: in.csv:12: unbalanced quote: the quote opened at line 12 runs to line 50: 38 lines read "
        "as one cell. To fix: the rows on those lines were read into this one; fix the quote at line 12 (a quote "
        "inside a quoted cell is written twice), and convert the file again. (--on-error fail stops at the first "
        "bad row; --on-error quarantine saves bad rows to a rejects file and goes on.)")
    assert len(result.lines) == 10
    assert (result.summary["unbalanced_quotes"], result.summary["lines_swallowed"]) == (1, 38)


def test_inspect_counts_the_lines_an_unbalanced_quote_swallowed(tmp_path):
    rows = numbered_rows(200)
    with_quote(rows, 12, before=True)
    with_quote(rows, 102, before=False)

    result = run(tmp_path, csv_text(rows), "-m", "m", command="inspect")

    assert result.code == cli.EXIT_OK
    text = "\n".join(result.lines)
    assert "rows: 110 read, 109 would be written, 1 rejected\n" \
           "  1 × unbalanced quote: the quote opened at line 12 runs to line 102: 90 lines read as one cell\n" \
           "lines read into rejected rows by unbalanced quotes: 90 (1 row)\n" in text


# ---------------------------------------------------------------- class 6: lines InfluxDB refuses or mangles

CONTROL_IN_TAGS = ["a\x85b", "a\x9fb", "a\u2028b", "a\u2029b", "a\x1fb", "a\x7fb"]
# Stored as they are in a string field (both servers: tests below); only CR and LF end a line.
STRING_FIELD_TEXT = "tab\tdel\x7fnel\x85ls\u2028ps\u2029quote\"back\\slash"


def test_c1_and_unicode_line_separators_in_a_tag_reject_the_row(tmp_path):
    data = "station,v,time\n" + "".join(f"{tag},{i},2020-01-01T00:00:0{i}Z\n" for i, tag in enumerate(CONTROL_IN_TAGS))
    data += "ok,9,2020-01-01T00:00:09Z\n"

    result = run(tmp_path, data, "-m", "m", "-t", "station")

    assert result.code == cli.EXIT_REJECTS
    assert result.books[:3] == ["1 line written", "6 rows rejected", "  6 × control character in tag column 'station'"]
    assert result.lines == ["m,station=ok v=9 1577836809000000000"]

    replaced = run(tmp_path, None, "-m", "m", "-t", "station", "--control-chars", "replace")

    assert replaced.code == cli.EXIT_OK
    assert replaced.lines == [f"m,station=a\\ b v={i} 157783680{i}000000000" for i in range(6)] + \
        ["m,station=ok v=9 1577836809000000000"]


def test_control_characters_in_a_string_field_are_kept_as_they_are(tmp_path):
    data = 'note,time\n"' + STRING_FIELD_TEXT.replace('"', '""') + '",2020-01-01T00:00:00Z\n'

    result = run(tmp_path, data, "-m", "m")

    assert result.code == cli.EXIT_OK
    assert result.lines == ['m note="' + STRING_FIELD_TEXT.replace("\\", "\\\\").replace('"', '\\"') +
                            '" 1577836800000000000']


@pytest.mark.parametrize(("flag", "key", "why"), [
    ("-t", "_measurement", "InfluxDB 2 refuses as a tag key (Flux's name for the measurement)"),
    ("-t", "_field", "InfluxDB 2 refuses as a tag key (Flux's name for the field key)"),
    ("-t", "_value", "InfluxDB 2 stores, but then fails every Flux query of the measurement"),
    ("-t", "_start", "InfluxDB 2 stores, but Flux shows the query's start there instead of the tag"),
    ("-f", "time", "InfluxDB refuses as a tag or field key (it names a point's timestamp)"),
])
def test_a_reserved_key_is_refused_before_any_row_is_read(tmp_path, flag, key, why):
    result = run(tmp_path, "col,v,when\na,1,2020-01-01T00:00:00Z\n", "-m", "m", "--time-column", "when",
                 flag, f"{key}=col")

    kind = "tag" if flag == "-t" else "field"
    assert result.code == cli.EXIT_ERROR
    assert result.stderr == [f"csv2lp: error: in.csv: {kind} column 'col' would get the key {key!r}, which {why}; "
                             f"give it another key, e.g. --{kind} {key.strip('_')}_{kind}=col."]
    assert result.lines == [] and not (tmp_path / "rejects.csv").exists()


def test_field_keys_named_like_flux_columns_are_written(tmp_path):
    """Both servers store fields `_field` and `_measurement` as they are (test below)."""
    result = run(tmp_path, "_field,_measurement,time\n1,2,2020-01-01T00:00:00Z\n", "-m", "m")

    assert result.code == cli.EXIT_OK
    assert result.lines == ["m _field=1,_measurement=2 1577836800000000000"]


FLUX_RESULT = textwrap.dedent("""\
    #group,false,false,true,true,false,false,true,true,true
    #datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string
    #default,_result,,,,,,,,
    ,result,table,_start,_stop,_time,_value,_field,_measurement,individual
    ,,0,2020-01-01T00:00:00Z,2021-01-01T00:00:00Z,2020-02-01T00:00:00Z,42.5,lat,fix,F1
    ,,0,2020-01-01T00:00:00Z,2021-01-01T00:00:00Z,2020-02-01T00:00:00Z,7,time,fix,F1
    """)


def test_a_flux_row_whose_field_key_is_time_is_rejected(tmp_path):
    result = run(tmp_path, FLUX_RESULT)

    assert result.code == cli.EXIT_REJECTS
    assert result.books[:3] == ["1 line written", "1 row rejected", "  1 × field key 'time' in column '_field'"]
    assert result.lines == ["fix,individual=F1 lat=42.5 1580515200000000000"]
    assert [reject[1:4] for reject in result.rejects] == [["6", "field key 'time' in column '_field'", "time"]]


def long_tag_rows(*series_key_bytes: int) -> str:
    """Rows whose series key (`m,t=` and a tag value of a's, b's, ...) has each of the given lengths; field `f`."""
    return "t,f,time\n" + "".join(f"{chr(97 + i) * (n - len('m,t='))},{i},2020-01-01T00:00:0{i}Z\n"
                                  for i, n in enumerate(series_key_bytes))


def test_a_series_key_over_influxdbs_limit_rejects_its_row(tmp_path):
    # Series key + "#!~#" + field key "f": 65,530 + 5 = 65,535 is the last length both servers take.
    result = run(tmp_path, long_tag_rows(65_530, 65_531), "-m", "m", "-t", "t")

    assert result.code == cli.EXIT_REJECTS
    assert result.books[:3] == ["1 line written", "1 row rejected",
                                "  1 × series key too long: measurement, tags and field key over 65,535 bytes"]
    [line] = result.lines
    assert len(line.split(" ")[0]) == 65_530 and line.endswith(" f=0 1577836800000000000")


def test_a_string_field_over_max_string_bytes_rejects_its_row(tmp_path):
    data = f"s,time\n{'x' * 65_536},2020-01-01T00:00:00Z\n{'y' * 65_537},2020-01-01T00:00:01Z\n"

    result = run(tmp_path, data, "-m", "m")

    assert result.code == cli.EXIT_REJECTS
    assert result.books[:3] == ["1 line written", "1 row rejected",
                                "  1 × string over 65,536 bytes in column 's' (--max-string-bytes)"]
    assert [len(line) for line in result.lines] == [len('m s="" 1577836800000000000') + 65_536]
    assert run(tmp_path, None, "-m", "m", "--max-string-bytes", "0").code == cli.EXIT_OK
    small = run(tmp_path, None, "-m", "m", "--max-string-bytes", "10")
    assert small.books[:3] == ["0 lines written", "2 rows rejected",
                               "  2 × string over 10 bytes in column 's' (--max-string-bytes)"]


@pytest.mark.parametrize(("precision", "first_ok", "first_stamp", "last_ok", "last_stamp", "range_text"), [
    ("ms", "1677-09-21T00:12:43.146Z", -9_223_372_036_854, "2262-04-11T23:47:16.854Z", 9_223_372_036_854,
     "1677-09-21T00:12:43.146Z to 2262-04-11T23:47:16.854Z"),
    ("s", "1677-09-21T00:12:44Z", -9_223_372_036, "2262-04-11T23:47:16Z", 9_223_372_036,
     "1677-09-21T00:12:44Z to 2262-04-11T23:47:16Z"),
    ("us", "1677-09-21T00:12:43.145225Z", -9_223_372_036_854_775, "2262-04-11T23:47:16.854775Z",
     9_223_372_036_854_775, "1677-09-21T00:12:43.145225Z to 2262-04-11T23:47:16.854775Z"),
])
def test_a_time_that_falls_out_of_range_at_the_precision_rejects_its_row(tmp_path, precision, first_ok, first_stamp,
                                                                          last_ok, last_stamp, range_text):
    # The very start of line protocol's range floors below it at any coarser precision.
    data = f"v,time\n1,1677-09-21T00:12:43.145224194Z\n2,{first_ok}\n3,{last_ok}\n4,2262-04-11T23:47:16.854775806Z\n"

    result = run(tmp_path, data, "-m", "m", "-p", precision)

    reason = f"out of range time in column 'time' (line protocol at -p {precision}: {range_text})"
    assert result.code == cli.EXIT_REJECTS
    assert result.books[:3] == ["3 lines written", "1 row rejected", f"  1 × {reason}"]
    assert result.lines == [f"m v=2 {first_stamp}", f"m v=3 {last_stamp}", f"m v=4 {last_stamp}"]


def test_epoch_times_are_checked_at_the_output_precision_too(tmp_path):
    data = "v,time\n1,-9223372036854775806\n2,-9223372036854000000\n"

    result = run(tmp_path, data, "-m", "m", "--time-format", "epoch_ns", "-p", "ms")

    assert result.code == cli.EXIT_REJECTS
    assert result.lines == ["m v=2 -9223372036854"]


# ---------------------------------------------------------------- class 6: what the real servers do

# Lines a converter without these checks writes: the servers refuse or mangle each (the proof
# that csv2lp must reject their rows). (line, precision, what the server does)
NAIVE_LINES_1X = [
    (b"m,t=" + b"a" * 65_527 + b" f=1 1\n", "ns", "refused"),  # series key 65,531 + "#!~#f"
    (b"m f=1 -9223372036855\n", "ms", "refused"),  # 1677-09-21T00:12:43.145224194Z floored to ms
    (b"m,time=a f=1 1\n", "ns", "refused"),
    (b"m time=1 1\n", "ns", "refused"),
]
NAIVE_LINES_2X = NAIVE_LINES_1X + [
    (b"m,_measurement=a f=1 1\n", "ns", "refused"),
    (b"m,_field=a f=1 1\n", "ns", "refused"),
]


def hostile_but_writable(tmp_path: Path) -> list[tuple[list[str], str, list[dict]]]:
    """csv2lp runs over the hostile inputs above (at -p ms) and the points each one's written lines
    must give: [(lines, precision, expected points)]. Only the rows csv2lp accepts are written."""
    cases = []

    def convert(data: str, *args: str) -> list[str]:
        result = run(tmp_path, data, "-p", "ms", *args)
        assert result.code in (cli.EXIT_OK, cli.EXIT_REJECTS), result.stderr
        return result.lines

    lines = convert('note,time\n"' + STRING_FIELD_TEXT.replace('"', '""') + '",2020-01-01T00:00:00Z\n', "-m", "strings")
    cases.append((lines, "strings", [{"time": 1577836800000, "note": STRING_FIELD_TEXT}]))
    data = "station,v,time\n" + "".join(f"{tag},{i},2020-01-01T00:00:0{i}Z\n" for i, tag in enumerate(CONTROL_IN_TAGS))
    lines = convert(data, "-m", "tags", "-t", "station", "--control-chars", "replace")
    cases.append((lines, "tags", [{"time": 1577836800000 + 1000 * i, "station": "a b", "v": i} for i in range(6)]))
    lines = convert(long_tag_rows(65_530, 65_531), "-m", "m", "-t", "t")
    cases.append((lines, "m", [{"time": 1577836800000, "t": "a" * 65_526, "f": 0}]))
    lines = convert(f"s,time\n{'x' * 65_536},2020-01-01T00:00:00Z\n", "-m", "longstring")
    cases.append((lines, "longstring", [{"time": 1577836800000, "s": "x" * 65_536}]))
    data = "v,time\n1,1677-09-21T00:12:43.145224194Z\n2,1677-09-21T00:12:43.146Z\n3,2262-04-11T23:47:16.854775806Z\n"
    lines = convert(data, "-m", "times")
    cases.append((lines, "times", [{"time": -9_223_372_036_854, "v": 2}, {"time": 9_223_372_036_854, "v": 3}]))
    ids = [9007199254740993, 9007199254740992, 9007199254740995, 9007199254740994, 9007199254740997]
    lines = convert("id,time\n" + "".join(f"{n},2020-01-01T00:00:0{i}Z\n" for i, n in enumerate(ids)), "-m", "ids")
    cases.append((lines, "ids", [{"time": 1577836800000 + 1000 * i, "id": n} for i, n in enumerate(ids)]))
    lines = convert("_field,_measurement,time\n1,2,2020-01-01T00:00:00Z\n", "-m", "fluxnames")
    cases.append((lines, "fluxnames", [{"time": 1577836800000, "_field": 1, "_measurement": 2}]))
    return cases


def test_influxdb_1_stores_every_line_csv2lp_writes_for_hostile_values_as_meant(tmp_path, influxdb, influx_db):
    cases = hostile_but_writable(tmp_path)
    for lines, measurement, expected in cases:
        body = "".join(line + "\n" for line in lines).encode()
        assert influxdb.write(body, influx_db, precision="ms") == len(expected)  # raises unless 204
    for lines, measurement, expected in cases:
        got = _read_back(influxdb, measurement, influx_db)
        if len(got) < len(expected):  # 1.6.7 can answer short for a while after acknowledged writes
            time.sleep(2)
            got = _read_back(influxdb, measurement, influx_db)
        assert got == expected, measurement


def _read_back(server: InfluxDB1Server, measurement: str, db: str) -> list[dict]:
    results = server.query(f"SELECT * FROM {quote_ident(measurement)} GROUP BY *", db=db, epoch="ms")
    rows = []
    for result in results:
        for series in result.get("series", []):
            for values in series["values"]:
                row = {k: v for k, v in zip(series["columns"], values) if v is not None}
                row.update({k: v for k, v in series.get("tags", {}).items() if v != ""})
                rows.append(row)
    return sorted(rows, key=lambda row: row["time"])


@pytest.mark.parametrize(("line", "precision", "outcome"), NAIVE_LINES_1X, ids=lambda v: str(v)[:30])
def test_influxdb_1_refuses_the_lines_csv2lp_refuses_to_write(influxdb, influx_db, line, precision, outcome):
    with pytest.raises(InfluxDBError, match=r"answered 400"):
        influxdb.write(line, influx_db, precision=precision)


def test_influxdb_1_drops_a_time_field_beside_other_fields_without_a_word(influxdb, influx_db):
    """Why a field named 'time' is refused even where the server answers 204."""
    assert influxdb.write(b"m time=1,g=2 1\n", influx_db) == 1
    assert influxdb.points("m", influx_db) == [{"time": 1, "g": 2}]


def test_influxdb_2_stores_every_line_csv2lp_writes_for_hostile_values_as_meant(tmp_path, influxdb2, influx2_bucket):
    cases = hostile_but_writable(tmp_path)
    for lines, measurement, expected in cases:
        body = "".join(line + "\n" for line in lines).encode()
        assert influxdb2.write(body, influx2_bucket, precision="ms") == len(expected)  # raises unless 204
    for lines, measurement, expected in cases:
        got = [{**row, "time": row["time"] // 1_000_000} for row in influxdb2.points(measurement, influx2_bucket)]
        assert sorted(got, key=lambda row: row["time"]) == expected, measurement
        flux = influxdb2.flux_points(measurement, influx2_bucket)  # Flux reads them too
        assert len(flux) == len(expected), measurement


@pytest.mark.parametrize(("line", "precision", "outcome"), NAIVE_LINES_2X, ids=lambda v: str(v)[:30])
def test_influxdb_2_refuses_the_lines_csv2lp_refuses_to_write(influxdb2, influx2_bucket, line, precision, outcome):
    from support.influxdb2 import InfluxDB2Error

    with pytest.raises(InfluxDB2Error, match=r"answered (400|422)"):
        influxdb2.write(line, influx2_bucket, precision=precision)


@pytest.mark.parametrize("key", ["_value", "_time"])
def test_influxdb_2_stores_a_value_or_time_tag_and_then_fails_every_flux_query_of_it(influxdb2, influx2_bucket, key):
    from support.influxdb2 import InfluxDB2Error

    assert influxdb2.write(f"m,{key}=a f=1 1\n".encode(), influx2_bucket) == 1
    with pytest.raises(InfluxDB2Error, match=r"answered 500"):
        influxdb2.flux_points("m", influx2_bucket)


# ---------------------------------------------------------------- class 7: no silent value change

IDS = [9007199254740993, 9007199254740992, 9007199254740995, 9007199254740994, 9007199254740997]


def test_integers_a_float_would_change_make_an_auto_column_integer(tmp_path):
    data = "id,time\n" + "".join(f"{n},2020-01-01T00:00:0{i}Z\n" for i, n in enumerate(IDS))

    result = run(tmp_path, data, "-m", "m")

    warning = ("warning: in.csv: column 'id' holds integers that a float would change (such as 9007199254740993): "
               "its type is integer (`id=...i`), not float; --type id=float writes floats instead")
    assert result.code == cli.EXIT_OK
    assert result.books == ["5 lines written", "0 rows rejected", warning]
    assert [line.split(" ")[1] for line in result.lines] == [f"id={n}i" for n in IDS]
    assert result.summary["inferred_types"] == {"id": "integer"}
    assert result.summary["warnings"] == [warning[len("warning: "):]]

    as_floats = run(tmp_path, None, "-m", "m", "--type", "id=float")  # asked for: five IDs, three values
    assert as_floats.code == cli.EXIT_OK and as_floats.summary["warnings"] == []
    assert len({line.split(" ")[1] for line in as_floats.lines}) == 3


def test_an_auto_float_column_rejects_a_later_integer_a_float_would_change(tmp_path):
    # The first block (64 KiB) holds small numbers only: the column is typed float there.
    small = "".join(f"{i % 1000}.5,2020-01-01T00:00:00Z\n" for i in range(4000))
    data = "v,time\n" + small + "9007199254740993,2020-01-02T00:00:00Z\n"

    result = run(tmp_path, data, "-m", "m", "--block-size", "65536")

    reason = "integer a float would change in column 'v' (typed float from its first values)"
    assert result.code == cli.EXIT_REJECTS
    assert result.books[:3] == ["4,000 lines written", "1 row rejected", f"  1 × {reason}"]
    assert [reject[1:4] for reject in result.rejects] == [["4002", reason, "9007199254740993"]]
    declared = run(tmp_path, None, "-m", "m", "--block-size", "65536", "--type", "v=float")
    assert declared.code == cli.EXIT_OK and declared.lines[-1] == "m v=9.007199254740992e+15 1577923200000000000"


def test_a_last_line_without_its_line_break_is_converted_with_a_warning(tmp_path):
    result = run(tmp_path, "v,time\n1.5,2020-01-01T00:00:00Z\n12,2020-01-01T00:00:01Z", "-m", "m")

    warning = ("in.csv: line 3, the last, has no line break at its end: if the file was cut short (a copy still in "
               "progress), its last value is cut too, and was converted as it is; check that row, or convert the "
               "whole file again")
    assert result.code == cli.EXIT_OK
    assert result.books == ["2 lines written", "0 rows rejected", f"warning: {warning}"]
    assert result.lines == ["m v=1.5 1577836800000000000", "m v=12 1577836801000000000"]
    assert result.summary["warnings"] == [warning]
    ended = run(tmp_path, "v,time\n1.5,2020-01-01T00:00:00Z\n", "-m", "m")
    assert ended.summary["warnings"] == [] and not any(line.startswith("warning") for line in ended.books)


# ---------------------------------------------------------------- class 8: columns left out

FLUX_WITH_S2 = textwrap.dedent("""\
    #group,false,false,true,true,false,false,true,true,true,false
    #datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string
    #default,_result,,,,,,,,,
    ,result,table,_start,_stop,_time,_value,_field,_measurement,individual,s2_cell_id
    ,,0,2020-01-01T00:00:00Z,2021-01-01T00:00:00Z,2020-02-01T00:00:00Z,42.5,lat,fix,F1,89c25
    ,,1,2020-01-01T00:00:00Z,2021-01-01T00:00:00Z,2020-02-01T00:00:00Z,-73.5,lon,fix,F1,89c25
    """)
S2_LEFT_OUT = (
    "column 's2_cell_id' holds values that reach no line: in a Flux result (a table with _field and _value) only "
    "group columns (#group true) and columns typed tag become tags, and each row's field is _field=_value: "
    "InfluxData's converter leaves the other columns out too. Mark it #group true to keep it as a tag, or read "
    "the file with --format csv and a mapping")


def test_a_flux_column_left_out_with_values_is_named_in_a_warning(tmp_path):
    result = run(tmp_path, FLUX_WITH_S2)

    assert result.code == cli.EXIT_OK
    assert result.lines == ["fix,individual=F1 lat=42.5 1580515200000000000",
                            "fix,individual=F1 lon=-73.5 1580515200000000000"]
    assert result.books == ["2 lines written", "0 rows rejected", f"warning: in.csv: {S2_LEFT_OUT}"]
    assert result.summary["warnings"] == [f"in.csv: {S2_LEFT_OUT}"]


def test_a_group_column_is_a_tag_and_no_warning_is_given(tmp_path):
    grouped = FLUX_WITH_S2.replace("#group,false,false,true,true,false,false,true,true,true,false",
                                   "#group,false,false,true,true,false,false,true,true,true,true")

    result = run(tmp_path, grouped)

    assert result.code == cli.EXIT_OK and result.summary["warnings"] == []
    assert result.lines[0] == "fix,individual=F1,s2_cell_id=89c25 lat=42.5 1580515200000000000"


def test_a_column_left_out_without_values_or_on_request_says_nothing(tmp_path):
    empty = FLUX_WITH_S2.replace(",F1,89c25", ",F1,")
    assert run(tmp_path, empty).summary["warnings"] == []
    ignored = FLUX_WITH_S2.replace("double,string,string,string,string", "double,string,string,string,ignored")
    assert run(tmp_path, ignored).summary["warnings"] == []


def test_inspect_names_the_column_left_out_and_shows_field_and_value_as_the_lines_carry_them(tmp_path):
    result = run(tmp_path, FLUX_WITH_S2, command="inspect")

    assert result.code == cli.EXIT_OK
    table = {line.split()[0]: line for line in result.lines if line and line.split()[0] in ("_value", "_field", "s2_cell_id")}
    assert re.fullmatch(r"_value +field +lat, lon +float +0\.0% +each line's field key is its row's _field", table["_value"])
    assert re.fullmatch(r"_field +field key +string +0\.0% +2", table["_field"])
    assert re.fullmatch(r"s2_cell_id +ignored +0\.0% +left out: in a Flux result .*", table["s2_cell_id"])
    assert f"warning: in.csv: {S2_LEFT_OUT}" in result.lines


# ---------------------------------------------------------------- execd's log


def test_execd_logs_each_warning_as_a_w_line(tmp_path):
    """A mapping file that only names a measurement lets execd read annotated CSV too."""
    spool = tmp_path / "spool"
    spool.mkdir()
    (tmp_path / "mapping.toml").write_text('measurement = "cut"\n')
    config = tmp_path / "csv2lp.toml"
    config.write_text(f'[spool]\ndir = "{spool}"\npoll_seconds = 0.2\n\n[convert]\nmapping = "mapping.toml"\n\n'
                      "[pacing]\nlines_per_second = 0\n")
    for name, data in (("cut.csv", "v,time\n1.5,2020-01-01T00:00:00Z\n12,2020-01-01T00:00:01Z"),
                       ("flux.csv", FLUX_WITH_S2)):
        hidden = spool / f".{name}.part"
        hidden.write_text(data)
        os.utime(hidden, (time.time() - 60, time.time() - 60))
        hidden.rename(spool / name)
    child = subprocess.Popen([PYTHON, "-m", "converter", "execd", "--config", str(config)], cwd=tmp_path,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 60
        while len(list(spool.glob("done/*.csv"))) < 2:
            assert time.monotonic() < deadline and child.poll() is None, "execd did not finish both files"
            time.sleep(0.1)
        out, err = child.communicate(b"", timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    log = err.decode().splitlines()
    assert child.returncode == 0
    warnings = [line for line in log if line.startswith("W! ")]
    assert warnings == [
        f"W! {spool / 'cut.csv'}: line 3, the last, has no line break at its end: if the file was cut short (a copy "
        f"still in progress), its last value is cut too, and was converted as it is; check that row, or convert the "
        f"whole file again",
        f"W! {spool / 'flux.csv'}: {S2_LEFT_OUT}",
    ]
    assert out.decode().splitlines() == ["cut v=1.5 1577836800000000000", "cut v=12 1577836801000000000",
                                         "fix,individual=F1 lat=42.5 1580515200000000000",
                                         "fix,individual=F1 lon=-73.5 1580515200000000000"]
