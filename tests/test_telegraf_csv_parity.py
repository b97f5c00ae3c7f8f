"""Parity with the real Telegraf: the same config file and CSV through Telegraf and through csv2lp.

Each case is one CSV and one set of csv_* options. Both sides get the very same config file:
Telegraf runs it once (`telegraf --once`: [[inputs.file]] with the csv parser -> [[outputs.file]]
in line protocol, nanoseconds), csv2lp reads it with `--config` (it takes the csv_* keys of the
[[inputs.file]] table and ignores [agent] and the outputs). The outputs are compared as sets of
points (measurement, tags, field, typed value, time), so field order and number formatting do not
matter, types do.

Where the two differ by design, the test pins the exact difference (`DIFFERENCES` below):
- Telegraf guesses a type per value (int, else float, else bool, else string); csv2lp decides
  once per column (float, else boolean, else string), so a column never changes type;
- Telegraf writes an empty cell as the string field "" (unless csv_skip_values has ""); csv2lp
  leaves it out;
- without csv_skip_errors one bad row makes Telegraf drop the whole file; csv2lp quarantines
  the row and writes the rest;
- an empty measurement cell: Telegraf falls back to the plugin name, csv2lp rejects the row;
- a row with fewer cells than the header: Telegraf writes the fields it has, csv2lp rejects it.

Telegraf names points after the plugin (`file`) unless csv_measurement_column or
name_override say otherwise; the configs here set name_override = "file" where they have no
measurement column, so csv2lp (whose own default is the file name) gets the same name from
the same file.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import line_protocol_parser
import pytest

from support.telegraf import toml_table

pytestmark = pytest.mark.telegraf

RUN_TIMEOUT_S = 60

Point = tuple  # (measurement, tags, field, (type, value), time or None)


@dataclass(frozen=True)
class Case:
    name: str
    csv: str
    options: dict[str, object]
    # Exact differences: points only Telegraf writes, points only csv2lp writes.
    telegraf_only: frozenset = frozenset()
    csv2lp_only: frozenset = frozenset()
    compare_time: bool = True
    telegraf_errors: tuple[str, ...] = ()  # E! log lines Telegraf must print (and no others)
    csv2lp_status: int = 0
    extra_args: tuple[str, ...] = field(default=())


def points(lines: list[str], *, with_time: bool) -> set[Point]:
    found = set()
    for line in lines:
        parsed = line_protocol_parser.parse_line(line)
        tags = tuple(sorted(parsed["tags"].items()))
        for key, value in parsed["fields"].items():
            typed = (type(value).__name__, value)
            found.add((parsed["measurement"], tags, key, typed, parsed["time"] if with_time else None))
    return found


def p(measurement: str, tags: dict[str, str], key: str, value: object, time_ns: int | None) -> Point:
    return (measurement, tuple(sorted(tags.items())), key, (type(value).__name__, value), time_ns)


def config_text(csv_path: Path, out_path: Path, options: dict[str, object]) -> str:
    """One file for both: Telegraf's agent, its output, and the [[inputs.file]] under test."""
    # precision: Telegraf rounds the times of polled inputs to the interval (at most 1 s) unless told.
    agent = {"interval": "1h", "flush_interval": "1h", "precision": "1ns", "omit_hostname": True, "debug": True}
    return "\n".join([
        toml_table("[agent]", agent),
        toml_table("[[outputs.file]]", {"files": [str(out_path)], "data_format": "influx"}),
        toml_table("[[inputs.file]]", {"files": [str(csv_path)], "data_format": "csv", **options}),
    ])


def run_telegraf(telegraf_bin: Path, workdir: Path, config: Path, out_path: Path) -> tuple[list[str], list[str]]:
    """`telegraf --once`: gather once, flush, exit. Its lines and its E! log lines."""
    done = subprocess.run([str(telegraf_bin), "--config", str(config), "--once"], cwd=workdir,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert "Wrote batch" in log or "Input channel closed" in log, log
    errors = [line.split("E! ", 1)[1] for line in log.splitlines() if " E! " in line]
    lines = out_path.read_text().splitlines() if out_path.exists() else []
    return lines, errors


def run_csv2lp(workdir: Path, csv_path: Path, config: Path, *args: str) -> tuple[int, list[str], str]:
    out = workdir / "csv2lp.lp"
    done = subprocess.run([sys.executable, "-m", "converter", "convert", str(csv_path), "--config", str(config),
                           "-o", str(out), "--rejects", str(workdir / "rejects.csv"), "-q", *args],
                          cwd=workdir, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    return done.returncode, out.read_text().splitlines() if out.exists() else [], done.stderr


def compare(case: Case, telegraf_bin: Path, tmp_path: Path) -> tuple[set[Point], set[Point]]:
    csv_path = tmp_path / "data.csv"
    csv_path.write_text(textwrap.dedent(case.csv).lstrip("\n"))
    out_path = tmp_path / "telegraf.lp"
    config = tmp_path / "telegraf.conf"
    config.write_text(config_text(csv_path, out_path, case.options))

    started = time.time_ns()
    telegraf_lines, errors = run_telegraf(telegraf_bin, tmp_path, config, out_path)
    finished = time.time_ns()
    status, csv2lp_lines, stderr = run_csv2lp(tmp_path, csv_path, config, *case.extra_args)

    assert status == case.csv2lp_status, stderr
    assert len(errors) == len(case.telegraf_errors), errors
    for error, expected in zip(errors, case.telegraf_errors):
        assert expected in error
    if not case.compare_time:
        # Telegraf stamps the points with the time it read them; csv2lp leaves the time to the server.
        assert all(started <= line_protocol_parser.parse_line(line)["time"] <= finished for line in telegraf_lines)
        assert all(line_protocol_parser.parse_line(line)["time"] is None for line in csv2lp_lines)
    ours = points(csv2lp_lines, with_time=case.compare_time)
    theirs = points(telegraf_lines, with_time=case.compare_time)
    return theirs, ours


# ---------------------------------------------------------------- cases where both write the same points

SAME = [
    Case("header_column_types_tags_go_layout_timezone", """
        station,temp,count,ok,when
        s1,21.5,3,true,2024-03-31 01:30:00
        s2,-4,0,False,2024-03-31 03:30:00
        s1,1e3,-7,T,2024-07-01 12:00:00.250
        """, {"name_override": "file", "csv_header_row_count": 1, "csv_tag_columns": ["station"],
              "csv_column_types": ["string", "float", "int", "bool", "string"],
              "csv_timestamp_column": "when", "csv_timestamp_format": "2006-01-02 15:04:05",
              "csv_timezone": "Europe/Berlin"}),
    Case("column_names_without_header_semicolons_unix", """
        web1;0.5;3;1700000000
        web2;1.25;4;1700000060
        """, {"name_override": "file", "csv_column_names": ["host", "load", "procs", "ts"],
              "csv_column_types": ["string", "float", "int", "int"], "csv_delimiter": ";",
              "csv_tag_columns": ["host"], "csv_timestamp_column": "ts", "csv_timestamp_format": "unix"}),
    Case("skip_rows_two_header_rows_skip_columns_unix_ms", """
        logger 7 export
        -----
        row,temp,rain,ti
        ,_c,_mm,me
        1,20.5,0,1700000000123
        2,19,1.5,1700000001000
        """, {"name_override": "file", "csv_skip_rows": 2, "csv_header_row_count": 2, "csv_skip_columns": 1,
              "csv_column_types": ["float", "float", "int"], "csv_timestamp_column": "time",
              "csv_timestamp_format": "unix_ms"}),
    Case("comments_and_trimmed_cells_rfc3339", """
        # exported 2024-01-01
        site, level, note, time
        # a comment
         north , 1.5, a b ,2024-01-01T00:00:00+02:00
        south,  2,  c,2024-01-01T00:00:00Z
        #another
        """, {"name_override": "file", "csv_header_row_count": 1, "csv_comment": "#", "csv_trim_space": True,
              "csv_tag_columns": ["site"], "csv_column_types": ["string", "float", "string", "string"],
              "csv_timestamp_column": "time", "csv_timestamp_format": "2006-01-02T15:04:05Z07:00"}),
    Case("metadata_rows_become_tags_metadata_wins", """
        # Version=1.1
        # File Created: 2021-11-17T07:02:45+10:00
        Version,measurement,cpu,time_user,time_idle,time
        1.2,cpu,cpu0,42,58,1700000000000000
        1.2,cpu,cpu1,40,60,1700000000000001
        """, {"name_override": "file", "csv_metadata_rows": 2, "csv_metadata_separators": [":", "="],
              "csv_metadata_trim_set": " #", "csv_header_row_count": 1, "csv_tag_columns": ["Version", "cpu"],
              "csv_column_types": ["string", "string", "string", "int", "int", "int"],
              "csv_timestamp_column": "time", "csv_timestamp_format": "unix_us"}),
    Case("metadata_with_tag_overwrite_keeps_the_column", """
        # Version=1.1
        Version,cpu,v
        1.2,cpu0,7
        ,cpu1,8
        """, {"name_override": "file", "csv_metadata_rows": 1, "csv_metadata_separators": ["="],
              "csv_metadata_trim_set": " #", "csv_header_row_count": 1, "csv_tag_columns": ["Version", "cpu"],
              "csv_tag_overwrite": True, "csv_column_types": ["string", "string", "int"]},
         compare_time=False),
    Case("measurement_column_unix_ns", """
        m,host,v,t
        cpu,a,1.5,1700000000123456789
        mem,a,2.5,1700000000123456790
        """, {"csv_header_row_count": 1, "csv_measurement_column": "m", "csv_tag_columns": ["host"],
              "csv_column_types": ["string", "string", "float", "int"], "csv_timestamp_column": "t",
              "csv_timestamp_format": "unix_ns", "csv_reset_mode": "always"}),
    Case("skip_values_empty_and_na", """
        sensor,a,b,t
        x,1.5,NA,1700000000
        NA,,2.5,1700000001
        ,3.5,,1700000002
        """, {"name_override": "file", "csv_header_row_count": 1, "csv_skip_values": ["", "NA"],
              "csv_tag_columns": ["sensor"], "csv_column_types": ["string", "float", "float", "int"],
              "csv_timestamp_column": "t", "csv_timestamp_format": "unix"}),
    Case("skip_errors_drop_bad_rows", """
        id,n,x,t
        a,1,0.5,1700000000
        b,oops,1.5,1700000001
        c,3,2.5,not-a-time
        d,4,3.5,1700000003
        """, {"name_override": "file", "csv_header_row_count": 1, "csv_skip_errors": True,
              "csv_tag_columns": ["id"], "csv_column_types": ["string", "int", "float", "int"],
              "csv_timestamp_column": "t", "csv_timestamp_format": "unix"},
         csv2lp_status=3),
    Case("fractional_seconds_rfc3339_milli", """
        k,v,t
        a,1,2024-05-06T07:08:09.123+02:00
        b,2,2024-05-06T07:08:09.000Z
        """, {"name_override": "file", "csv_header_row_count": 1, "csv_tag_columns": ["k"],
              "csv_column_types": ["string", "int", "string"], "csv_timestamp_column": "t",
              "csv_timestamp_format": "2006-01-02T15:04:05.000Z07:00"}),
    Case("fractional_seconds_nano_optional", """
        k,v,t
        a,1,2024-05-06 07:08:09.123456789
        b,2,2024-05-06 07:08:09
        """, {"name_override": "file", "csv_header_row_count": 1, "csv_tag_columns": ["k"],
              "csv_column_types": ["string", "int", "string"], "csv_timestamp_column": "t",
              "csv_timestamp_format": "2006-01-02 15:04:05.999999999", "csv_timezone": "America/New_York"}),
    Case("go_layout_day_first_in_a_time_zone", """
        k,v,t
        a,1.5,31/12/2023 23:59:59
        b,2.5,01/07/2024 00:00:00
        """, {"name_override": "file", "csv_header_row_count": 1, "csv_tag_columns": ["k"],
              "csv_column_types": ["string", "float", "string"], "csv_timestamp_column": "t",
              "csv_timestamp_format": "02/01/2006 15:04:05", "csv_timezone": "America/New_York"}),
    Case("go_layout_month_names_12_hour_clock", """
        k,v,t
        a,1.5,"March 5, 2024 1:07 PM"
        b,2.5,"December 25, 2023 11:59 AM"
        """, {"name_override": "file", "csv_header_row_count": 1, "csv_tag_columns": ["k"],
              "csv_column_types": ["string", "float", "string"], "csv_timestamp_column": "t",
              "csv_timestamp_format": "January 2, 2006 3:04 PM"}),
    Case("no_timestamp_column", """
        k,v
        a,1.5
        b,2.5
        """, {"name_override": "file", "csv_header_row_count": 1, "csv_tag_columns": ["k"],
              "csv_column_types": ["string", "float"]},
         compare_time=False),
]


@pytest.mark.parametrize("case", SAME, ids=[c.name for c in SAME])
def test_same_points_as_telegraf(case: Case, telegraf_bin: Path, tmp_path: Path) -> None:
    theirs, ours = compare(case, telegraf_bin, tmp_path)

    assert theirs, "Telegraf wrote nothing: the case proves nothing"
    assert ours == theirs


# A Go layout with a numeric offset outside ISO 8601 shapes becomes a strptime pattern with %z
# (regression: the strict strptime check used to format the time back in UTC and reject any
# other offset).
def test_same_points_as_telegraf_with_a_numeric_offset_layout(telegraf_bin: Path, tmp_path: Path) -> None:
    case = Case("rfc1123z", """
        k,v,t
        a,1.5,"Mon, 06 May 2024 07:08:09 +0200"
        b,2.5,"Mon, 06 May 2024 07:08:09 +0000"
        """, {"name_override": "file", "csv_header_row_count": 1, "csv_tag_columns": ["k"],
              "csv_column_types": ["string", "float", "string"], "csv_timestamp_column": "t",
              "csv_timestamp_format": "RFC1123Z"})
    theirs, ours = compare(case, telegraf_bin, tmp_path)

    assert ours == theirs


# ---------------------------------------------------------------- documented differences

T0 = 1_700_000_000_000_000_000
DIFFERENCES = [
    # Per-value guessing: count is all integers (Telegraf: int; csv2lp: float, numbers are floats
    # unless typed), ratio flips int/float in Telegraf, flag flips bool/int, note gets "" in Telegraf.
    Case("type_guessing_per_value_vs_per_column", """
        name,count,ratio,flag,note,t
        a,1,0.5,true,x,1700000000
        b,2,1,false,y,1700000001
        c,3,1.5,1,,1700000002
        """, {"name_override": "file", "csv_header_row_count": 1, "csv_tag_columns": ["name"],
              "csv_timestamp_column": "t", "csv_timestamp_format": "unix"},
         telegraf_only=frozenset({
             p("file", {"name": "a"}, "count", 1, T0),
             p("file", {"name": "b"}, "count", 2, T0 + 10**9),
             p("file", {"name": "c"}, "count", 3, T0 + 2 * 10**9),
             p("file", {"name": "b"}, "ratio", 1, T0 + 10**9),
             p("file", {"name": "c"}, "flag", 1, T0 + 2 * 10**9),
             p("file", {"name": "c"}, "note", "", T0 + 2 * 10**9),
         }),
         csv2lp_only=frozenset({
             p("file", {"name": "a"}, "count", 1.0, T0),
             p("file", {"name": "b"}, "count", 2.0, T0 + 10**9),
             p("file", {"name": "c"}, "count", 3.0, T0 + 2 * 10**9),
             p("file", {"name": "b"}, "ratio", 1.0, T0 + 10**9),
             p("file", {"name": "c"}, "flag", True, T0 + 2 * 10**9),
         })),
    # An empty cell in a string column: Telegraf writes v="", csv2lp leaves the field out.
    Case("empty_cell_is_an_empty_string_in_telegraf", """
        k,v,w,t
        a,x,1.5,1700000000
        b,,2.5,1700000001
        """, {"name_override": "file", "csv_header_row_count": 1, "csv_tag_columns": ["k"],
              "csv_column_types": ["string", "string", "float", "int"], "csv_timestamp_column": "t",
              "csv_timestamp_format": "unix"},
         telegraf_only=frozenset({p("file", {"k": "b"}, "v", "", T0 + 10**9)})),
    # Without csv_skip_errors one bad row loses Telegraf the whole file; csv2lp quarantines it.
    Case("bad_row_without_skip_errors", """
        k,n,t
        a,1,1700000000
        b,oops,1700000001
        c,3,1700000002
        """, {"name_override": "file", "csv_header_row_count": 1, "csv_tag_columns": ["k"],
              "csv_column_types": ["string", "int", "int"], "csv_timestamp_column": "t",
              "csv_timestamp_format": "unix"},
         csv2lp_only=frozenset({p("file", {"k": "a"}, "n", 1, T0), p("file", {"k": "c"}, "n", 3, T0 + 2 * 10**9)}),
         telegraf_errors=('parse int error strconv.ParseInt: parsing "oops": invalid syntax',),
         csv2lp_status=3),
    # An empty measurement cell: Telegraf falls back to the plugin name, csv2lp rejects the row.
    Case("empty_measurement_cell", """
        m,v,t
        cpu,1.5,1700000000
        ,2.5,1700000001
        """, {"csv_header_row_count": 1, "csv_measurement_column": "m", "csv_column_types": ["string", "float", "int"],
              "csv_timestamp_column": "t", "csv_timestamp_format": "unix"},
         telegraf_only=frozenset({p("file", {}, "v", 2.5, T0 + 10**9)}),
         csv2lp_status=3),
    # A short row: Telegraf writes the cells it has, csv2lp rejects the row as ragged.
    Case("short_row", """
        k,v,w
        a,1.5,2.5
        b,3.5
        """, {"name_override": "file", "csv_header_row_count": 1, "csv_tag_columns": ["k"],
              "csv_column_types": ["string", "float", "float"]},
         telegraf_only=frozenset({p("file", {"k": "b"}, "v", 3.5, None)}),
         compare_time=False, csv2lp_status=3),
]


@pytest.mark.parametrize("case", DIFFERENCES, ids=[c.name for c in DIFFERENCES])
def test_documented_differences_from_telegraf(case: Case, telegraf_bin: Path, tmp_path: Path) -> None:
    theirs, ours = compare(case, telegraf_bin, tmp_path)

    assert theirs | ours, "neither side wrote anything: the case proves nothing"
    assert theirs - ours == case.telegraf_only
    assert ours - theirs == case.csv2lp_only


def test_every_parser_option_is_covered() -> None:
    """Each csv_* option csv2lp reads is exercised against the real Telegraf by some case above."""
    from converter.formats.telegraf_csv import CSV_KEYS

    used = {key for case in [*SAME, *DIFFERENCES] for key in case.options}
    assert set(CSV_KEYS) - used == set()
