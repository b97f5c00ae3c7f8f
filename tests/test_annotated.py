"""Annotated CSV input (converter/formats/annotated.py): annotations, datatypes, layouts, and parity
with InfluxData's own converter.

The reference is pkg/csv2lp of influxdb/v2 v2.0.7, the code `influx write` (and `influx
write dryrun`) runs on CSV input, built by .ci/install-annotated-ref from
tests/support/annotated_ref. The parity test feeds every file of PARITY_FILES to both and
compares the lines as sets of (measurement, tags, field, typed value, time).

Differences on purpose (each has a test below that pins it):
- precision: pkg/csv2lp always writes nanoseconds, and `influx write -p s` sends them as
  seconds (points land in the year 50 million); our times follow --precision. The parity
  test floors the reference's nanoseconds to the precision compared.
- a row whose time cell is empty: the reference writes the line without a time (the server
  stamps it with its clock); we reject the row ("empty time").
- NaN/Inf in a double column: the reference stops (or skips the row); we leave the field out
  and count it, as for plain CSV.
- naive times in an RFC3339 column: the reference refuses them; we read them in the
  #timezone zone (UTC by default). We also accept a space instead of the 'T'.
- a column without datatype (or `field`): the reference copies the text into the line as it
  is (`abc` makes an invalid line); we infer float, boolean or string, once per column.
- ragged rows: the reference reads rows with fewer or more cells (missing cells take their
  defaults); we reject them, as for plain CSV.
- a row whose cells are all empty (`,,,`): a blank line to us, as in plain CSV (skipped and
  counted); a row to the reference, which fills it with the #default values.
- a header row after a blank line without annotations: a data row to both (it then fails
  its types); only a column annotation starts a new table.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from converter import ConvertOptions, MappingSpec, Precision, convert, open_output
from converter.books import rowerrors
from converter.formats.annotated import InputFormat, looks_annotated
from converter.formats.annotated_types import go_layout_to_strptime
from converter.books.duplicates import DuplicateMode
from converter.errors import MappingError
from converter.pipeline import DUPLICATE_POINT
from converter.plan.options import OnError

DEFAULT_BIN_DIR = Path.home() / ".cache" / "csv2lp-bin"
INSTALL_SCRIPT = ".ci/install-annotated-ref"
REF_TIMEOUT_S = 30


# ---------------------------------------------------------------- the reference binary


@pytest.fixture(scope="session")
def annotated_ref() -> Path:
    """The reference converter; fail in CI (it is part of the contract there), skip elsewhere."""
    bin_dir = Path(os.environ.get("CSV2LP_BIN_DIR") or DEFAULT_BIN_DIR)
    binary = bin_dir / "annotated-ref"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    reason = f"no annotated-ref binary in {bin_dir}: run {INSTALL_SCRIPT} (builds influxdb/v2's pkg/csv2lp)"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def reference_lines(binary: Path, text: str) -> list[str]:
    """The reference's lines; rows it cannot convert are skipped, like `influx write --skipRowOnError`."""
    result = subprocess.run([str(binary), "-skip-row-on-error"], input=text.encode(), capture_output=True,
                            check=False, timeout=REF_TIMEOUT_S)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().splitlines()


# ---------------------------------------------------------------- our converter


def ours(tmp_path: Path, text: str, *, precision: str = "ns", measurement: str | None = None,
         input_format: InputFormat = InputFormat.AUTO, name: str = "input.csv") -> tuple[list[str], object]:
    source = tmp_path / name
    source.write_text(text, encoding="utf-8")
    out = tmp_path / f"{name}.lp"
    sink = open_output(str(out))
    try:
        summary = convert([str(source)], mapping=MappingSpec(measurement=measurement),
                          options=ConvertOptions(precision=Precision(precision), on_error=OnError.SKIP,
                                                 input_format=input_format, workers=1), sink=sink)
    finally:
        sink.close()
    return out.read_text(encoding="utf-8").splitlines(), summary


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# ---------------------------------------------------------------- line protocol -> comparable points


def _split(text: str, separators: str, *, quotes: bool = False) -> list[str]:
    """Split at unescaped separators (and, for field sets, outside double quotes); keep escapes."""
    parts, current, quoted, i = [], [], False, 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i: i + 2])
            i += 2
            continue
        if quotes and char == '"':
            quoted = not quoted
        if char in separators and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ',= "\\':
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _value(text: str) -> tuple[str, object]:
    if text.startswith('"'):
        return "string", text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if text[-1] == "i":
        return "integer", int(text[:-1])
    if text[-1] == "u":
        return "unsigned", int(text[:-1])
    if text in ("t", "T", "true", "True", "TRUE"):
        return "boolean", True
    if text in ("f", "F", "false", "False", "FALSE"):
        return "boolean", False
    return "float", float(text)


def points(lines: list[str], *, ns_to: Precision | None = None) -> set[tuple]:
    """{(measurement, tags, field, (type, value), time)}; `ns_to` floors nanosecond times to a precision."""
    result = set()
    for line in lines:
        parts = _split(line, " ", quotes=True)
        series, field_set = parts[0], parts[1]
        time = int(parts[2]) if len(parts) > 2 else None
        if time is not None and ns_to is not None:
            time //= ns_to.ns_per_unit
        measurement, *tags = _split(series, ",")
        tag_set = tuple(sorted(tuple(_unescape(p) for p in _split(tag, "=")) for tag in tags))
        for fld in _split(field_set, ",", quotes=True):
            key, value = _split(fld, "=", quotes=True)[0], fld[len(_split(fld, "=", quotes=True)[0]) + 1:]
            result.add((_unescape(measurement), tag_set, _unescape(key), _value(value), time))
    return result


def test_points_reads_escapes_types_and_quotes():
    line = r'm\ 1,a\=b=c\,d x="q\"u,o te",n=5i,u=6u,f=1.5,b=true 10'
    assert points([line]) == {
        ("m 1", (("a=b", "c,d"),), "x", ("string", 'q"u,o te'), 10),
        ("m 1", (("a=b", "c,d"),), "n", ("integer", 5), 10),
        ("m 1", (("a=b", "c,d"),), "u", ("unsigned", 6), 10),
        ("m 1", (("a=b", "c,d"),), "f", ("float", 1.5), 10),
        ("m 1", (("a=b", "c,d"),), "b", ("boolean", True), 10),
    }


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize("header, annotated", [
    (("#datatype", "measurement", "double"), True),
    (("#datatype measurement", "double"), True),
    (("#group", "false"), True),
    (("#default", "x"), True),
    (("#constant measurement", "cpu"), True),
    (("#timezone -0500",), True),
    (("#Datatype", "string"), True),  # pkg/csv2lp compares annotation names in lower case
    (("sep=;",), True),
    (("m|measurement", "v|double"), True),
    (("a", "b|ignored"), True),
    (("t|dateTime:RFC3339", "v"), True),
    (("event-id", "timestamp", "location-long"), False),  # Movebank
    (("#datatypes", "x"), False),  # not an annotation: a comment to pkg/csv2lp
    (("a|b", "c"), False),  # a pipe, but no datatype after it
    (("# comment",), False),
    ((), False),
])
def test_detection(header, annotated):
    assert looks_annotated(header) is annotated


def test_plain_csv_is_untouched_by_auto(tmp_path):
    lines, _ = ours(tmp_path, "a,b\n1,x\n", measurement="m")
    assert lines == ['m a=1,b="x"']


def test_format_csv_reads_an_annotated_file_as_plain_csv(tmp_path):
    text = "m|measurement,v|double\ncpu,1\n"
    lines, _ = ours(tmp_path, text, input_format=InputFormat.CSV, measurement="plain")
    assert lines == ['plain m|measurement="cpu",v|double=1']


def test_format_annotated_reads_a_file_without_annotations(tmp_path):
    lines, _ = ours(tmp_path, "_measurement,host,v\ncpu,h1,1.5\n", input_format=InputFormat.ANNOTATED)
    assert lines == ["cpu host=\"h1\",v=1.5"]


# ---------------------------------------------------------------- annotations and types, one at a time

CASES = [
    # (id, csv, expected lines)
    ("datatype annotation row",
     """
     #datatype,measurement,tag,double,long,unsignedLong,boolean,string,dateTime:RFC3339
     ,m,host,d,l,u,b,s,t
     ,cpu,h1,1.5,-2,3,true,hi,2020-01-01T00:00:00Z
     """,
     ['cpu,host=h1 d=1.5,l=-2i,u=3u,b=true,s="hi" 1577836800000000000']),
    ("datatype in the first cell, and time as an alias",
     """
     #datatype measurement,double,time
     m,v,t
     cpu,2,5
     """,
     ["cpu v=2 5"]),
    ("header shorthand with defaults",
     """
     m|measurement|test,name|tag|anon,v|long|7,t|dateTime:number
     ,,,1
     x,n1,8,2
     """,
     ["test,name=anon v=7i 1", "x,name=n1 v=8i 2"]),
    ("default annotation fills empty cells, not filled ones",
     """
     #datatype,measurement,tag,double,dateTime:RFC3339
     #default,cpu,h0,0.5,2020-01-01T00:00:00Z
     ,m,host,v,t
     ,,h9,,
     ,mem,,1.5,2020-01-01T00:00:01Z
     """,
     ["cpu,host=h9 v=0.5 1577836800000000000", "mem,host=h0 v=1.5 1577836801000000000"]),
    ("constants: measurement, tag, field, time",
     """
     #constant measurement,sensors
     #constant,tag,site,lab 1
     #constant,long,batch,42
     #constant,dateTime:RFC3339,2021-03-04T05:06:07Z
     id|tag,value|double
     a,1.5
     """,
     [r"sensors,id=a,site=lab\ 1 value=1.5,batch=42i 1614834367000000000"]),
    ("group true makes a tag, whatever the datatype, but not of the measurement",
     """
     #group true,true,false,true
     #datatype measurement,string,string,double
     m,host,s,v
     cpu,h1,a,1
     """,
     ['cpu,host=h1,v=1 s="a"']),
    ("ignored columns and columns without a label",
     """
     #datatype measurement,ignored,ignore,double,double
     m,secret,junk,,v
     x,pw,zz,9,1
     """,
     ["x v=1"]),
    ("timezone offset for a layout without zone",
     """
     #timezone -0500
     #datatype measurement,double,dateTime:2006-01-02 15:04:05
     m,v,t
     w,1,2021-01-15 08:30:00
     """,
     ["w v=1 1610717400000000000"]),
    ("timezone by name, summer time",
     """
     #timezone,Europe/Berlin
     m|measurement,v|double,t|dateTime:02/01/2006 15:04
     w,1,15/07/2021 08:30
     """,
     ["w v=1 1626330600000000000"]),
    ("sep line and a number format",
     """
     sep=;
     m|measurement;price|double:,.;qty|long:,_;t|dateTime:number
     shop;1.234,5;1_000,9;16
     """,
     ["shop price=1234.5,qty=1000i 16"]),
    ("long drops its fraction, strict refuses it",
     """
     m|measurement,a|long,b|long:strict
     x,1.9,2
     x,3,4.5
     """,
     ["x a=1i,b=2i"]),  # the second row is rejected (b has a fraction)
    ("booleans by their first character, and by word lists",
     """
     m|measurement,a|boolean,"b|boolean:si,ja:no,nein",t|dateTime:number
     x,yes,si,1
     x,Nope,nein,2
     x,1,,3
     """,
     ["x a=true,b=true 1", "x a=false,b=false 2", "x a=true 3"]),
    ("flux long layout: one field per row, key from _field",
     """
     #group,false,false,true,true,false,false,true,true,true
     #datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string
     #default,_result,,,,,,,,
     ,result,table,_start,_stop,_time,_value,_field,_measurement,cpu
     ,,0,2020-02-25T22:17:54Z,2020-02-25T22:22:54Z,2020-02-25T22:17:57Z,0,time steal,cpu,cpu1
     ,,1,2020-02-25T22:17:54Z,2020-02-25T22:22:54Z,2020-02-25T22:17:58Z,2.5,usage_user,cpu,cpu1
     """,
     [r"cpu,cpu=cpu1 time\ steal=0 1582669077000000000", "cpu,cpu=cpu1 usage_user=2.5 1582669078000000000"]),
    ("comment lines between rows",
     """
     m|measurement,v|long
     # a comment
     x,1
     #another
     x,2
     """,
     ["x v=1i", "x v=2i"]),
    ("a constant after rows applies to the rows after it",
     """
     m|measurement,v|long
     x,1
     #constant,tag,t,a
     x,2
     """,
     ["x v=1i", "x,t=a v=2i"]),
    ("a repeated tag label: the last column wins",
     """
     m|measurement,a|tag,a|tag,v|long
     x,1,2,3
     x,1,,4
     """,
     ["x,a=2 v=3i", "x v=4i"]),
]


@pytest.mark.parametrize("text, expected", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_annotations_and_types(tmp_path, text, expected):
    lines, _ = ours(tmp_path, dedent(text))
    assert points(lines) == points(expected)
    assert len(lines) == len(expected)


@pytest.mark.parametrize("text, expected", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_cases_are_what_influx_write_writes(annotated_ref, text, expected):
    """The expectations above are the reference's output, not our reading of its docs."""
    assert sorted(reference_lines(annotated_ref, dedent(text))) == sorted(expected)


ERRORS = [
    ("no measurement",
     "#datatype tag,double\nhost,v\nh,1\n", "the table has no measurement"),
    ("no field",
     "m|measurement,host|tag\nx,h\n", "has no field column"),
    ("tag and field of one name",
     "m|measurement,a|tag,a|double\nx,h,1\n", "'a' is both a tag and a field column"),
    ("an unsupported datatype",
     "m|measurement,d|duration\nx,1s\n", "datatype duration, which csv2lp does not convert"),
    ("an unknown datatype",
     "m|measurement,d|decimal\nx,1\n", "unknown datatype 'decimal'"),
    ("a layout with a zone",
     "m|measurement,v|long,t|dateTime:2006-01-02 15:04 MST\nx,1,2020-01-01 00:00 UTC\n", "has 'MST'"),
    ("a bad timezone",
     "#timezone +01:00\nm|measurement,v|long\nx,1\n", "an offset is written [+]hhmm"),
    ("concat",
     "#concat,string,fullName,${a} ${b}\nm|measurement,a,b\nx,1,2\n", "#concat is not supported"),
    ("a boolean format without a colon",
     "m|measurement,b|boolean:yes\nx,yes\n", "boolean format 'yes' must be"),
    ("the time column is not a dateTime",
     "#datatype measurement,long,double\nm,_time,v\nx,1,2\n", "is the time column but has datatype 'long'"),
]


@pytest.mark.parametrize("text, message", [(e[1], e[2]) for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_mapping_errors_are_found_before_any_row(tmp_path, text, message):
    with pytest.raises(MappingError, match=message):
        ours(tmp_path, text)


def test_mapping_flags_other_than_measurement_are_refused(tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("m|measurement,v|long\nx,1\n")
    with pytest.raises(MappingError, match="carries its own mapping"):
        convert([str(source)], mapping=MappingSpec(measurement_column="m"), options=ConvertOptions(),
                sink=open_output(str(tmp_path / "out.lp")))


def test_measurement_flag_serves_tables_without_one(tmp_path):
    lines, _ = ours(tmp_path, "v|long\n1\n", measurement="fallback")
    assert lines == ["fallback v=1i"]


def test_rows_books_balance_and_lines_are_physical(tmp_path):
    text = dedent("""
        #datatype,measurement,long
        ,m,v
        ,x,1
        ,x,oops

        #datatype,measurement,double
        ,m,w
        ,y,2
        """)
    source = tmp_path / "in.csv"
    source.write_text(text)
    rejects = tmp_path / "rejects.csv"
    sink = open_output(str(tmp_path / "out.lp"))
    summary = convert([str(source)], mapping=MappingSpec(), sink=sink,
                      options=ConvertOptions(rejects_path=str(rejects), workers=1))
    sink.close()
    assert (summary.files, summary.rows_read, summary.lines_written, summary.rows_rejected) == (1, 3, 2, 1)
    assert summary.blank_lines == 1
    assert summary.balanced
    saved = rejects.read_text()
    assert f"{source}" in saved and ",4," in saved.replace('"', "")  # the bad row is line 4 of the file


def test_invalid_utf8_in_a_string_is_rejected_per_row(tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(b"m|measurement,s|string\nx,ok\nx,bad\xff\n")
    sink = open_output(str(tmp_path / "out.lp"))
    summary = convert([str(source)], mapping=MappingSpec(), sink=sink,
                      options=ConvertOptions(on_error=OnError.SKIP, workers=1))
    sink.close()
    assert (tmp_path / "out.lp").read_text() == 'x s="ok"\n'
    assert summary.rejects_by_reason == {"invalid UTF-8 in column 's'": 1}


def test_sections_split_across_read_chunks(tmp_path, monkeypatch):
    """Table boundaries found when a '\\n#' straddles two chunks of the byte search."""
    from converter.formats import annotated

    table = "#datatype,measurement,long\n,m,v\n" + "".join(f",x,{i}\n" for i in range(50))
    text = table + table.replace(",m,v", ",m,w")
    for chunk in (7, 13, 64):
        monkeypatch.setattr(annotated, "CHUNK", chunk)
        lines, summary = ours(tmp_path, text, name=f"chunk{chunk}.csv")
        assert len(lines) == 100 and lines[0] == "x v=0i" and lines[-1] == "x w=49i"
        assert summary.rows_read == 100


@pytest.mark.parametrize("layout, pattern", [
    ("2006-01-02T15:04:05", "%Y-%m-%dT%H:%M:%S"),
    ("02 Jan 06 15:04", "%d %b %y %H:%M"),
    ("Monday, January 2, 2006 3:04 PM", "%A, %B %d, %Y %I:%M %p"),
    ("2006.002 100%", "%Y.%j %m00%%"),  # a lone 1 is the month, as in Go
])
def test_go_layouts(layout, pattern):
    assert go_layout_to_strptime(layout, "t") == pattern


# ---------------------------------------------------------------- parity with pkg/csv2lp

PARITY_FILES = {
    "datatypes": """
        #datatype measurement,tag,string,double,boolean,long,unsignedLong,dateTime:RFC3339
        m,host,s,d,b,l,u,time
        cpu,h1,hello,1.5,true,-3,7,2020-01-01T00:00:00Z
        cpu,h2,"with ""quotes"" and \\ backslash",-0.25,false,9223372036854775807,18446744073709551615,2020-01-01T00:00:01.5Z
        cpu,h1,x,1e10,TRUE,0,0,2020-01-01T01:00:00+01:00
        cpu,h3,y,123456.789e-3,F,-9223372036854775808,1,1969-12-31T23:59:59.999999999Z
        """,
    "defaults": """
        #datatype,measurement,tag,tag,double,long,string,dateTime:RFC3339
        #default,weather,unknown,,0.5,,n/a,2020-06-01T00:00:00Z
        ,m,station,region,temp,count,note,time
        ,,s1,north,21.5,3,ok,2020-06-01T12:00:00Z
        ,air,,south,,4,,
        ,,s3,,,,,2020-06-01T13:00:00Z
        """,
    "constants": """
        #constant measurement,sensors
        #constant,tag,site,lab 1
        #constant,long,batch,42
        #constant,dateTime:RFC3339,2021-03-04T05:06:07Z
        id|tag,value|double
        a,1.5
        b,2.5
        """,
    "timezone_offset": """
        #timezone -0500
        #datatype measurement,tag,double,dateTime:2006-01-02 15:04:05
        m,city,temp,when
        w,nyc,3.5,2021-01-15 08:30:00
        w,nyc,4.5,2021-07-15 08:30:00
        """,
    "timezone_name": """
        #timezone,Europe/Berlin
        m|measurement,v|double,t|dateTime:02/01/2006 15:04
        w,1,15/01/2021 08:30
        w,2,15/07/2021 08:30
        """,
    "sep_semicolon": """
        sep=;
        m|measurement;price|double:,.;qty|long;note|string;t|dateTime:number
        shop;1.234,5;3;a,b;1600000000000000000
        shop;"2,5";4;"x;y";1600000000000000001
        """,
    "shorthand": """
        m|measurement|default_m,name|tag|anon,s|string,d|double|0,b|boolean|false,l|long,ul|unsignedLong,time|dateTime
        ,,str1,1.0,true,1,1,1
        ,,str2,,,2,2,2020-01-11T10:10:10Z
        test,x,str3,3,y,3,3,3
        """,
    "multiple_tables": """
        #datatype,measurement,tag,double,dateTime:RFC3339
        #default,cpu,,,
        ,m,host,usage,time
        ,,h1,1.5,2020-01-01T00:00:00Z
        ,,h2,2.5,2020-01-01T00:00:00Z

        #constant,tag,dc,west
        #datatype,measurement,tag,long,boolean,dateTime:number
        #default,mem,,,false,
        ,m,host,used,swap,time
        ,,h1,1024,,5
        ,,h2,2048,true,6
        #datatype,measurement,string,dateTime:number
        ,m,msg,time
        ,log,hello world,7
        """,
    "flux_long": """
        #group,false,false,true,true,false,false,true,true,true,true
        #datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string
        #default,_result,,,,,,,,,
        ,result,table,_start,_stop,_time,_value,_field,_measurement,cpu,host
        ,,0,2020-02-25T22:17:54.068926364Z,2020-02-25T22:22:54.068926364Z,2020-02-25T22:17:57Z,0,time_steal,cpu,cpu1,rsavage.prod
        ,,0,2020-02-25T22:17:54.068926364Z,2020-02-25T22:22:54.068926364Z,2020-02-25T22:18:07Z,0,time_steal,cpu,cpu1,rsavage.prod
        ,,1,2020-02-25T22:17:54.068926364Z,2020-02-25T22:22:54.068926364Z,2020-02-25T22:18:01Z,2.7263631815907954,usage_user,cpu,cpu-total,tahoecity.prod
        ,,1,2020-02-25T22:17:54.068926364Z,2020-02-25T22:22:54.068926364Z,2020-02-25T22:18:11Z,2.247752247752248,usage_user,cpu,cpu-total,tahoecity.prod

        #group,false,false,true,true,false,false,true,true,true
        #datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,long,string,string,string
        #default,_result,,,,,,,,
        ,result,table,_start,_stop,_time,_value,_field,_measurement,host
        ,,2,2020-02-25T22:17:54.068926364Z,2020-02-25T22:22:54.068926364Z,2020-02-25T22:18:01Z,42,n_cpus,system,tahoecity.prod

        #group,false,false,true,true,false,false,true,true,true
        #datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,string,string,string,string
        #default,_result,,,,,,,,
        ,result,table,_start,_stop,_time,_value,_field,_measurement,host
        ,,3,2020-02-25T22:17:54.068926364Z,2020-02-25T22:22:54.068926364Z,2020-02-25T22:18:01Z,"up 3 days, 2 users",uptime_format,system,tahoecity.prod
        ,,4,2020-02-25T22:17:54.068926364Z,2020-02-25T22:22:54.068926364Z,2020-02-25T22:18:01Z,,uptime_format,system,other

        #group,false,false,true,true,false,false,true,true,true
        #datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,boolean,string,string,string
        #default,_result,,,,,,,,
        ,result,table,_start,_stop,_time,_value,_field,_measurement,host
        ,,5,2020-02-25T22:17:54.068926364Z,2020-02-25T22:22:54.068926364Z,2020-02-25T22:18:01Z,true,healthy,system,tahoecity.prod
        """,
    "flux_wide": """
        #group,false,false,true,true,false,true,true,false,false
        #datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,string,string,double,double
        #default,_result,,,,,,,,
        ,result,table,_start,_stop,_time,_measurement,host,usage_user,usage_system
        ,,0,2020-01-01T00:00:00Z,2020-01-02T00:00:00Z,2020-01-01T10:00:00Z,cpu,h1,1.5,0.5
        ,,0,2020-01-01T00:00:00Z,2020-01-02T00:00:00Z,2020-01-01T10:00:10Z,cpu,h1,,0.25
        """,
    "ignored_columns": """
        #datatype measurement,ignored,tag,double,ignore,string,long
        m,secret,host,v,junk,s,
        x,pw,h,1,zzz,a,99
        x,pw,h,2,zzz,b,98
        """,
    "quoting_and_escapes": """
        m|measurement,my tag|tag,k=v|tag,field one|double,s|string,t|dateTime:number
        "cpu load","a,b","c d=e",1,"say ""hi"", then \\go",1
        "x,y",plain,"=",2,"",2
        """,
    "empty_values": """
        #datatype,measurement,tag,tag,double,long,string,boolean,dateTime:number
        ,m,a,b,x,y,z,w,time
        ,m1,,,1,,,,1
        ,m1,ta,,,2,,,2
        ,m1,,tb,,,s,,3
        ,m1,ta,tb,,,,true,4
        """,
    "number_formats": """
        m|measurement,"d|double:,.","l|long:,_","u|unsignedLong:._",p|double,q|long,t|dateTime:number
        x,"3.494.826.157,123","1_000,9",1_000.99,1 000.5,+7,1
        x,"-0,5",-2,0,.5e1,1_000,2
        """,
    "booleans": """
        m|measurement,a|boolean,"b|boolean:y,Y:n,N","c|boolean:yes:",d|boolean|true,t|dateTime:number
        x,yes,y,yes,,1
        x,No,N,maybe,false,2
        x,1,Y,,0,3
        x,0,n,no,t,4
        x,Tak,,x,,5
        """,
    "bad_rows_skipped": """
        #datatype measurement,long,double,dateTime:RFC3339
        m,n,d,t
        x,1,1.5,2020-01-01T00:00:00Z
        x,one,2.5,2020-01-01T00:00:01Z
        x,3,three,2020-01-01T00:00:02Z
        x,4,4.5,not a time
        ,5,5.5,2020-01-01T00:00:04Z
        x,6,6.5,2020-01-01T00:00:05Z
        """,
    "comments_and_constant_midway": """
        #timezone +0130
        # exported by hand
        m|measurement,v|long,t|dateTime:2006-01-02 15:04
        x,1,2020-01-01 00:00
        # a comment in the middle
        x,2,2020-01-01 00:01
        #constant,tag,phase,two
        x,3,2020-01-01 00:02
        """,
    "crlf_and_bom_free": "m|measurement,v|double,t|dateTime:RFC3339Nano\r\nx,1,2020-01-01T00:00:00.123456789Z\r\n"
                         "x,2,2020-01-01T00:00:00.000000001+02:00\r\n",
    "mixed_datetime": """
        m|measurement,v|long,t|dateTime
        x,1,1600000000123456789
        x,2,2020-09-13T12:26:40.5Z
        x,3,-1000
        """,
}


@pytest.mark.parametrize("precision", ["ns", "us", "ms", "s"])
@pytest.mark.parametrize("name", sorted(PARITY_FILES))
def test_parity_with_influx_write(annotated_ref, tmp_path, name, precision):
    text = dedent(PARITY_FILES[name]) if "\n" in PARITY_FILES[name][:1] else PARITY_FILES[name]
    expected = reference_lines(annotated_ref, text)
    assert expected, "the reference wrote nothing: the file tests nothing"
    lines, summary = ours(tmp_path, text, precision=precision)
    assert points(lines, ns_to=None) == points(expected, ns_to=Precision(precision))
    assert len(lines) == len(expected)
    assert summary.balanced


def test_parity_files_cover_the_brief():
    """Each datatype, #default, #constant, #timezone, sep=, shorthand, several tables, the Flux
    long layout with result/table/_start/_stop, ignored columns, quoting, empty values."""
    corpus = "\n".join(PARITY_FILES.values())
    for needle in ("double", "long", "unsignedLong", "boolean", "string", "#default", "#constant", "#timezone",
                   "sep=;", "|tag", "_start", "_stop", "_field", "_value", "ignored", '""', "dateTime:RFC3339",
                   "dateTime:number", "dateTime:2006"):
        assert needle in corpus, needle
    assert sum(text.count("#datatype") > 1 for text in PARITY_FILES.values()) >= 2  # multi-table files
    assert len(PARITY_FILES) >= 10


# ---------------------------------------------------------------- differences on purpose, pinned


def test_difference_precision_follows_the_flag(annotated_ref, tmp_path):
    """pkg/csv2lp writes nanoseconds whatever `influx write -p` says; ours are in the asked precision."""
    text = "m|measurement,v|long,t|dateTime:RFC3339\nx,1,2020-01-01T00:00:00.987654321Z\n"
    assert reference_lines(annotated_ref, text) == ["x v=1i 1577836800987654321"]
    assert ours(tmp_path, text, precision="s")[0] == ["x v=1i 1577836800"]
    assert ours(tmp_path, text, precision="ms")[0] == ["x v=1i 1577836800987"]


def test_difference_empty_time_is_rejected(annotated_ref, tmp_path):
    text = "m|measurement,v|long,t|dateTime:RFC3339\nx,1,\n"
    assert reference_lines(annotated_ref, text) == ["x v=1i"]  # the server would stamp it
    lines, summary = ours(tmp_path, text)
    assert lines == [] and summary.rejects_by_reason == {"empty time in column 't'": 1}


def test_difference_nan_leaves_the_field_out(annotated_ref, tmp_path):
    text = "m|measurement,a|double,b|double,t|dateTime:number\nx,NaN,1,1\n"
    assert reference_lines(annotated_ref, text) == []  # the row is an error there
    lines, summary = ours(tmp_path, text)
    assert lines == ["x b=1 1"] and summary.fields_dropped == 1


def test_difference_naive_rfc3339_is_read_in_the_timezone(annotated_ref, tmp_path):
    text = "#timezone +0100\nm|measurement,v|long,t|dateTime:RFC3339\nx,1,2020-01-01T01:00:00\n"
    assert reference_lines(annotated_ref, text) == []  # refused: RFC 3339 needs a zone
    assert ours(tmp_path, text)[0] == ["x v=1i 1577836800000000000"]


def test_difference_untyped_values_are_inferred(annotated_ref, tmp_path):
    text = "#constant measurement,m\na,b,c\n1,abc,1i\n"
    assert reference_lines(annotated_ref, text) == ["m a=1,b=abc,c=1i"]  # copied as they are: invalid
    assert ours(tmp_path, text)[0] == ['m a=1,b="abc",c="1i"']


def test_difference_ragged_rows_are_rejected(annotated_ref, tmp_path):
    text = "#default x,5\nm|measurement,v|long\nx\nx,1,extra\n"
    assert sorted(reference_lines(annotated_ref, text)) == ["x v=1i", "x v=5i"]
    lines, summary = ours(tmp_path, text)
    assert lines == [] and summary.rows_rejected == 2


def test_same_as_reference_header_after_blank_line_is_a_row(annotated_ref, tmp_path):
    text = "m|measurement,v|long\nx,1\n\nm|measurement,v|long\nx,2\n"
    assert reference_lines(annotated_ref, text) == ["x v=1i", "x v=2i"]
    lines, summary = ours(tmp_path, text)
    assert lines == ["x v=1i", "x v=2i"] and summary.rows_rejected == 1


# ---------------------------------------------------------------- the long layout in the encoder and pipeline

LONG = dedent("""
    #datatype,string,long,dateTime:RFC3339,double,string,string,string
    ,result,table,_time,_value,_field,_measurement,host
    ,,0,2020-02-25T22:17:57Z,2.7,usage user,cpu,h1
    ,,0,2020-02-25T22:17:57Z,1.1,usage_system,cpu,h1
    ,,0,2020-02-25T22:17:57Z,9.9,,cpu,h1
    ,,0,2020-02-25T22:17:57Z,3.3,usage_system,cpu,h1
    """)


def test_long_layout_fields_of_one_point_are_not_duplicates(tmp_path):
    """Two lines of one series and time with different _field are one point's fields; only
    the repeated usage_system is a duplicate (a row without _field has no field: rejected)."""
    source = tmp_path / "long.csv"
    source.write_text(LONG)
    sink = open_output(str(tmp_path / "out.lp"))
    summary = convert([str(source)], mapping=MappingSpec(), sink=sink, options=ConvertOptions(
        on_error=OnError.SKIP, duplicates=DuplicateMode.ERROR, workers=1))
    sink.close()
    assert (tmp_path / "out.lp").read_text().splitlines() == [
        r"cpu usage\ user=2.7 1582669077000000000", "cpu usage_system=1.1 1582669077000000000"]
    assert summary.rejects_by_reason == {rowerrors.NO_FIELD.text: 1, DUPLICATE_POINT.text: 1}


def test_keyed_field_in_the_encoder():
    """A RowKeyedField takes each row's key from another column, escaped; an empty key means no field."""
    import pyarrow as pa

    from converter.encode.encoder import EncodeOptions, Encoder
    from converter.mapping import FieldType as FT
    from converter.mapping import Plan, ResolvedField
    from converter.encode.row_keys import RowKeyedField

    batch = pa.RecordBatch.from_arrays(
        [pa.array([b"a b", b"c", None, b"d"]), pa.array([b"1", b"2", b"3", None]), pa.array([b"x", b"y", b"z", b"w"])],
        names=["_field", "_value", "s"])
    keyed = RowKeyedField("_value", 1, "_value", "_value", FT.INTEGER, key_index=0, key_column="_field")
    other = ResolvedField("s", 2, "s", "s", FT.STRING)
    for fields, expected in [
        ((keyed,), [r"m a\ b=1i", "m c=2i"]),
        ((other, keyed), [r'm s="x",a\ b=1i', 'm s="y",c=2i', 'm s="z"', 'm s="w"']),
        ((keyed, other), [r'm a\ b=1i,s="x"', 'm c=2i,s="y"', 'm s="z"', 'm s="w"']),
    ]:
        plan = Plan(("_field", "_value", "s"), "m", None, (), fields, None)
        encoded = Encoder(EncodeOptions()).encode(plan, batch, where="t")
        assert encoded.lines.to_pylist() == [line + "\n" for line in expected]


def test_cli_stdin_gzip_and_format_flag(tmp_path):
    import gzip

    text = "m|measurement,v|long,t|dateTime:number\nx,1,1000000000\n"
    for data in (text.encode(), gzip.compress(text.encode())):
        result = subprocess.run([sys.executable, "-m", "converter", "-", "-q", "-p", "s"], input=data, check=False,
                                capture_output=True, timeout=60)
        assert (result.returncode, result.stdout) == (0, b"x v=1i 1\n"), result.stderr
    plain = subprocess.run([sys.executable, "-m", "converter", "-", "-q", "--format", "csv", "-m", "p",
                            "--no-time"], input=text.encode(), capture_output=True, check=False, timeout=60)
    assert plain.stdout == b'p m|measurement="x",v|long=1,t|dateTime:number=1000000000\n', plain.stderr


def test_rejects_file_names_the_columns_by_label(tmp_path):
    text = "#constant,tag,site,s1\nm|measurement,v|long\nx,1\nx,bad\n"
    source = tmp_path / "in.csv"
    source.write_text(text)
    rejects = tmp_path / "rejects.csv"
    sink = open_output(str(tmp_path / "out.lp"))
    convert([str(source)], mapping=MappingSpec(), sink=sink,
            options=ConvertOptions(rejects_path=str(rejects), workers=1))
    sink.close()
    saved = rejects.read_text().splitlines()
    assert saved[0].endswith("m,v,#constant site")
    assert saved[1].endswith("x,bad,s1") and ",4," in saved[1]


def test_telegraf_read_settings_keep_a_file_plain(tmp_path):
    """Telegraf's CSV options describe a plain file: auto does not switch to annotated under them."""
    from converter.formats.annotated import is_annotated
    from converter.read.source import ReadSettings
    from converter.read.inputs import open_source

    source_path = tmp_path / "in.csv"
    source_path.write_text("junk line\nm|measurement,v|long\nx,1\n")
    plain = open_source(str(source_path))
    skipping = open_source(str(source_path), settings=ReadSettings(skip_rows=1))
    try:
        assert not is_annotated(plain, InputFormat.AUTO)  # its first line is no annotation
        assert not is_annotated(skipping, InputFormat.AUTO)
        assert is_annotated(plain, InputFormat.ANNOTATED)
        with pytest.raises(MappingError, match="does not combine"):
            is_annotated(skipping, InputFormat.ANNOTATED)
    finally:
        plain.close()
        skipping.close()


def test_a_cut_gzip_converts_the_rows_before_the_cut_with_the_file_s_line_numbers(tmp_path):
    """The second table's rows are numbered in the whole file, the cut-off one and the message's too."""
    import gzip

    first = "#datatype measurement,long,dateTime:number\nm,v,t\nx,1,1000000000\n\n"
    second = "#datatype measurement,long,dateTime:number\n#constant,tag,site,s1\nm,v,t\n" + "".join(
        f"y,{i},{1_000_000_000 + i}\n" for i in range(100_000))
    data = gzip.compress((first + second).encode())
    (tmp_path / "in.csv.gz").write_bytes(data[: len(data) // 2])
    result = subprocess.run([sys.executable, "-m", "converter", "in.csv.gz", "-q", "-p", "ns", "--rejects", "r.csv"],
                            cwd=tmp_path, capture_output=True, check=False, timeout=60)
    lines = result.stdout.decode().splitlines()
    assert result.returncode == 1 and lines[0] == "x v=1i 1000000000"
    rows = len(lines) - 1
    assert 10_000 < rows < 100_000
    assert lines[1:] == [f"y,site=s1 v={i}i {1_000_000_000 + i}" for i in range(rows)]
    cut_line = 8 + rows  # three lines of the first table, a blank one, two annotations and a header
    assert result.stderr.decode().startswith(f"csv2lp: error: in.csv.gz: cannot decompress past line {cut_line}: ")
    [reject] = (tmp_path / "r.csv").read_text().splitlines()[1:]
    assert reject.startswith(f"in.csv.gz,{cut_line},cut off: ")
