"""converter.formats.telegraf_csv and ReadSettings: Telegraf's CSV parser options read the way Telegraf reads them.

Three parts: the options -> MappingSpec/ReadSettings table (with the configs that must be
refused), Go reference layouts -> csv2lp time formats, and what each setting does to rows
and line numbers in the reader. The end-to-end comparison with a real Telegraf is in
test_telegraf_csv_parity.py.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from converter.errors import InputError, MappingError
from converter.mapping import NO_TIME, FieldType, MappingSpec, TagSpec, TimeSpec
from converter.read.source import ReadSettings
from converter.read.inputs import open_source
from converter.formats.telegraf_csv import (
    TelegrafCsvConfig,
    go_layout_elements,
    go_layout_to_time_format,
    is_telegraf_csv_config,
    load_telegraf_csv_options,
)


def load(text: str) -> TelegrafCsvConfig:
    return load_telegraf_csv_options(textwrap.dedent(text))


# ---------------------------------------------------------------- options -> mapping and read settings


def test_a_bare_table_of_csv_keys() -> None:
    config = load("""
        csv_header_row_count = 1
        csv_tag_columns = ["station", "sensor"]
        csv_measurement_column = "kind"
        csv_timestamp_column = "time"
        csv_timestamp_format = "2006-01-02 15:04:05"
        csv_timezone = "Europe/Berlin"
        csv_delimiter = ";"
        csv_skip_errors = true
        """)

    assert config.mapping == MappingSpec(
        measurement_column="kind",
        tags=(TagSpec("station"), TagSpec("sensor")),
        time=TimeSpec(column="time", format="iso8601", timezone="Europe/Berlin"),
    )
    assert config.read == ReadSettings(header_rows=1)
    assert config.delimiter == ";"
    assert config.skip_errors is True


def test_the_csv_input_of_a_whole_telegraf_config() -> None:
    config = load("""
        [agent]
          interval = "10s"
        [[inputs.file]]
          files = ["other.json"]
          data_format = "json"
        [[inputs.file]]
          files = ["/data/*.csv"]
          data_format = "csv"
          name_override = "weather"
          csv_header_row_count = 2
          csv_skip_rows = 1
          csv_skip_columns = 1
          csv_comment = "#"
          csv_trim_space = true
          csv_skip_values = ["", "NA"]
          csv_column_types = ["float", "int"]
          csv_metadata_rows = 2
          csv_metadata_separators = [":", "="]
          csv_metadata_trim_set = " #"
          csv_tag_overwrite = true
          csv_reset_mode = "always"
        [[outputs.file]]
          files = ["stdout"]
        """)

    assert config.mapping == MappingSpec(measurement="weather", time=TimeSpec(column=NO_TIME))
    assert config.read == ReadSettings(
        skip_rows=1, metadata_rows=2, metadata_separators=(":", "="), metadata_trim_set=" #", metadata_wins=False,
        comment="#", header_rows=2, skip_columns=1, trim_space=True, skip_values=("", "NA"),
        column_types=(FieldType.FLOAT, FieldType.INTEGER),
    )
    assert (config.delimiter, config.skip_errors) == (",", False)


def test_given_column_names_and_every_column_type() -> None:
    config = load("""
        csv_column_names = ["a", "b", "c", "d"]
        csv_column_types = ["int", "float", "bool", "string"]
        """)

    assert config.read.header_rows == 0
    assert config.read.column_names == ("a", "b", "c", "d")
    assert config.read.column_types == (FieldType.INTEGER, FieldType.FLOAT, FieldType.BOOLEAN, FieldType.STRING)


def test_name_override_beats_the_measurement_column_which_stays_out_of_the_fields() -> None:
    config = load("""
        csv_header_row_count = 1
        csv_measurement_column = "kind"
        name_override = "fixed"
        """)

    assert (config.mapping.measurement, config.mapping.measurement_column) == ("fixed", None)
    assert config.mapping.exclude == ("kind",)


def test_without_a_timestamp_column_points_get_no_time_not_a_guessed_column() -> None:
    # Telegraf stamps such points with the time it read them, and a column named "time" stays a field.
    assert load("csv_header_row_count = 1").mapping.time == TimeSpec(column=NO_TIME)


@pytest.mark.parametrize(("text", "expected"), [
    ("csv_header_row_count = 1", True),
    ("[[inputs.file]]\ndata_format = 'csv'\ncsv_header_row_count = 1", True),
    ("measurement = 'x'\n[tags]\nstation = 'station'", False),
    ("not toml [", False),
])
def test_telegraf_configs_are_told_from_csv2lp_mapping_files(text: str, expected: bool) -> None:
    assert is_telegraf_csv_config(text) is expected


@pytest.mark.parametrize(("text", "message"), [
    ("csv_header_row_count = 1\ncsv_tag_column = ['a']",
     "csv_tag_column is not an option of Telegraf's CSV parser. Did you mean csv_tag_columns?"),
    ("csv_tag_columns = ['a']",
     "csv_header_row_count is 0 (the default) and csv_column_names is empty; set csv_header_row_count = 1"),
    ("csv_column_names = ['a', 'b']\ncsv_column_types = ['int']",
     "csv_column_names has 2 names but csv_column_types 1 types"),
    ("csv_header_row_count = 1\ncsv_column_types = ['integer']",
     "csv_column_types has 'integer'; the types are int, float, bool and string"),
    ("csv_header_row_count = 1\ncsv_metadata_rows = 2", "csv_metadata_rows = 2 needs csv_metadata_separators"),
    ("csv_header_row_count = 1\ncsv_delimiter = ';;'", "csv_delimiter = ';;' must be one character"),
    ("csv_header_row_count = 1\ncsv_comment = '\"'", "csv_comment = '\"' must be one character other than a quote"),
    ("csv_header_row_count = 1\ncsv_header_row_count_x = 1", "csv_header_row_count_x is not an option"),
    ("csv_header_row_count = -1", "csv_header_row_count = -1 must not be negative"),
    ("csv_header_row_count = '1'", "csv_header_row_count = '1' must be a whole number"),
    ("csv_header_row_count = 1\ncsv_trim_space = 'yes'", "csv_trim_space = 'yes' must be true or false"),
    ("csv_header_row_count = 1\ncsv_timestamp_column = 't'", "csv_timestamp_column = 't' needs csv_timestamp_format"),
    ("csv_header_row_count = 1\ncsv_timestamp_column = 't'\ncsv_timestamp_format = 'unix'\ncsv_timezone = 'Mars/Base'",
     "csv_timezone = 'Mars/Base' is not an IANA time zone name"),
    ("csv_header_row_count = 1\ncsv_reset_mode = 'sometimes'", "csv_reset_mode = 'sometimes' is not one of none, always"),
    ("csv_header_row_count = 1\nfile_tag = 'file'", "file_tag is a Telegraf setting csv2lp does not apply"),
    ("csv_header_row_count = 1\n[tags]\nsite = 'a'", "tags is a Telegraf setting csv2lp does not apply"),
    ("csv_header_row_count = 1\ncharacter_encoding = 'utf-16le'", "character_encoding = 'utf-16le'; csv2lp reads UTF-8 only"),
    ("[[inputs.file]]\ndata_format = 'csv'\ncsv_header_row_count = 1\n[[inputs.file]]\ndata_format = 'csv'",
     "2 [[inputs.file]] tables have data_format = \"csv\"; csv2lp takes exactly one"),
    ("[[inputs.file]]\ndata_format = 'json'", "0 [[inputs.file]] tables have data_format = \"csv\""),
    ("csv_header_row_count = 1\ndata_format = 'json'", "data_format = 'json'; csv2lp reads Telegraf's \"csv\" format only"),
    ("csv_header_row_count = [", "Telegraf CSV options: not valid TOML"),
])
def test_configs_csv2lp_refuses_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(MappingError, match=None) as caught:
        load_telegraf_csv_options(text)
    assert message in str(caught.value)


def test_a_config_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "telegraf.conf"
    path.write_text("[[inputs.file]]\n  data_format = \"csv\"\n  csv_header_row_count = 1\n")
    assert load_telegraf_csv_options(path).read == ReadSettings(header_rows=1)
    with pytest.raises(MappingError, match="cannot read Telegraf config .*missing.conf"):
        load_telegraf_csv_options(tmp_path / "missing.conf")


# ---------------------------------------------------------------- Go reference layouts


@pytest.mark.parametrize(("layout", "expected"), [
    # csv_timestamp_format's own words
    ("unix", "epoch_s"),
    ("unix_ms", "epoch_ms"),
    ("unix_us", "epoch_us"),
    ("unix_ns", "epoch_ns"),
    # ISO 8601 shapes go to the iso8601 parser, which reads fractions and offsets
    ("2006-01-02 15:04:05", "iso8601"),
    ("2006-01-02T15:04:05", "iso8601"),
    ("2006-01-02T15:04:05Z07:00", "iso8601"),
    ("2006-01-02T15:04:05-0700", "iso8601"),
    ("2006-01-02T15:04:05Z", "iso8601"),
    ("2006-01-02T15:04:05.000Z07:00", "iso8601"),
    ("2006-01-02 15:04:05.999999999", "iso8601"),
    ("2006-01-02 15:04", "iso8601"),
    ("RFC3339", "iso8601"),
    ("rfc3339nano", "iso8601"),
    # everything else: strptime
    ("2006-01-02", "%Y-%m-%d"),
    ("02/01/2006 15:04:05", "%d/%m/%Y %H:%M:%S"),
    ("1/2/06 3:04PM", "%m/%d/%y %I:%M%p"),
    ("January 2, 2006 3:04 pm", "%B %d, %Y %I:%M %p"),
    ("Mon, 02 Jan 2006 15:04:05 -0700", "%a, %d %b %Y %H:%M:%S %z"),
    ("RFC1123Z", "%a, %d %b %Y %H:%M:%S %z"),
    ("ANSIC", "%a %b %e %H:%M:%S %Y"),
    ("Monday 2006-002", "%A %Y-%j"),
    ("20060102150405", "%Y%m%d%H%M%S"),
    ("2006_01_02", "%Y_%m_%d"),
    ("_2006-01-02", "_%Y-%m-%d"),  # _2006 is a literal underscore and the year
    ("2006-01-02 in %", "%Y-%m-%d in %%"),
    ("10% 2006", "%m0%% %Y"),  # Go reads every 1 as a month, and so does the translation
    ("Janx 2006", "Janx %Y"),  # Jan followed by a lower-case letter is text
])
def test_go_layouts_to_time_formats(layout: str, expected: str) -> None:
    assert go_layout_to_time_format(layout) == expected


@pytest.mark.parametrize(("layout", "message"), [
    ("02/01/2006 15:04:05.000", "fractional seconds (.000) can be read only in ISO 8601 layouts"),
    ("2006-01-02 15:04:05,000", "fractional seconds (,000) can be read only in ISO 8601 layouts"),
    ("StampMilli", "has no year"),
    ("Mon Jan 2 15:04:05 MST 2006", "zone abbreviations (MST) are ambiguous"),
    ("RFC1123", "zone abbreviations (MST) are ambiguous"),
    ("2006-01-02 15:04:05 -07:00:00", "the element '-07:00:00' has no strptime equivalent"),
    ("2006 __2", "the element '__2' has no strptime equivalent"),
    ("Jan _2 15:04:05", "has no year"),
    ("yyyy-mm-dd", "is not a Go reference layout"),
    ("%Y-%m-%d", "is not a Go reference layout"),
    ("timestamp_tz_ms", "is not supported by csv2lp"),
])
def test_go_layouts_csv2lp_cannot_read_are_refused(layout: str, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        go_layout_to_time_format(layout)
    assert message in str(caught.value)


def test_go_layout_elements_follow_gos_rules() -> None:
    assert go_layout_elements("Mon Jan _2 15:04:05.000 2006") == [
        ("Mon", True), (" ", False), ("Jan", True), (" ", False), ("_2", True), (" ", False), ("15", True),
        (":", False), ("04", True), (":", False), ("05", True), (".000", True), (" ", False), ("2006", True),
    ]
    # A run of 0s or 9s after a dot is a fraction only when no other digit follows.
    assert go_layout_elements("05.0001") == [("05", True), (".00", False), ("01", True)]
    assert go_layout_elements("05.999999999Z07:00") == [("05", True), (".999999999", True), ("Z07:00", True)]


# ---------------------------------------------------------------- ReadSettings in the reader


def read(tmp_path: Path, text: str, settings: ReadSettings, *, delimiter: str = ",",
         raw: bytes | None = None) -> tuple[tuple[str, ...], list[tuple[int, list[str | None]]], list[int]]:
    """The header, then (physical line, cells) of each row, and the lines of rows Arrow could not split."""
    path = tmp_path / "in.csv"
    path.write_bytes(raw if raw is not None else textwrap.dedent(text).lstrip("\n").encode())
    source = open_source(str(path), delimiter=delimiter, settings=settings, block_size=1 << 16)
    rows: list[tuple[int, list[str | None]]] = []
    invalid: list[int] = []
    try:
        for block in source.blocks():
            columns = [[None if c is None else c.decode() for c in column.to_pylist()] for column in block.cells.columns]
            for i, line in enumerate(block.row_lines()):
                rows.append((int(line), [column[i] for column in columns]))
            invalid += [row.line for row in block.invalid]
    finally:
        source.close()
    return source.header, rows, invalid


def test_skip_rows_metadata_and_comment_lines_keep_physical_line_numbers(tmp_path: Path) -> None:
    header, rows, invalid = read(tmp_path, """
        exported by logger 7
        # Site=north
        # note: two words
        # a comment before the header
        time,value
        # a comment
        1,10
        #
        2,20
        ragged
        3,30
        # a comment at the end""", ReadSettings(skip_rows=1, metadata_rows=2, metadata_separators=(":", "="),
                                                metadata_trim_set=" #", comment="#"))

    assert header == ("time", "value", "Site", "note")
    assert rows == [(7, ["1", "10", "north", "two words"]), (9, ["2", "20", "north", "two words"]),
                    (11, ["3", "30", "north", "two words"])]
    assert invalid == [10]


def test_comment_lines_across_many_blocks_keep_line_numbers(tmp_path: Path) -> None:
    lines = ["n,text"]
    expected = []
    for i in range(20_000):
        if i % 7 == 0:
            lines.append(f"# comment {i} " + "x" * (i % 50))
        else:
            lines.append(f"{i},{'y' * (i % 40)}")
            expected.append((len(lines), str(i)))
    _, rows, _ = read(tmp_path, "", ReadSettings(comment="#"), raw=("\n".join(lines) + "\n").encode())

    assert [(line, cells[0]) for line, cells in rows] == expected


def test_header_rows_are_joined_per_column_and_skip_columns_drops_from_the_left(tmp_path: Path) -> None:
    header, rows, _ = read(tmp_path, """
        idx,temp,rain,ti
        ,_c,_mm,me

        1,20.5,0,100
        """, ReadSettings(header_rows=2, skip_columns=1))

    assert header == ("temp_c", "rain_mm", "time")
    assert rows == [(3, [None, None, None]), (4, ["20.5", "0", "100"])]  # a blank line is an all-empty row


def test_given_column_names_without_a_header(tmp_path: Path) -> None:
    header, rows, _ = read(tmp_path, """
        x;1;2
        y;3;4
        """, ReadSettings(header_rows=0, column_names=("a", "b"), skip_columns=1), delimiter=";")

    assert header == ("a", "b")
    assert rows == [(1, ["1", "2"]), (2, ["3", "4"])]


def test_given_column_names_replace_the_header_rows(tmp_path: Path) -> None:
    header, rows, _ = read(tmp_path, """
        old1,old2
        1,2
        """, ReadSettings(header_rows=1, column_names=("a", "b")))

    assert header == ("a", "b")
    assert rows == [(2, ["1", "2"])]


def test_trim_space_and_skip_values(tmp_path: Path) -> None:
    header, rows, _ = read(tmp_path, """
         name , value,note
          a ,\t1.5 ,  NA
        b,   , x y
        """, ReadSettings(trim_space=True, skip_values=("NA",)))

    assert header == ("name", "value", "note")
    assert rows == [(2, ["a", "1.5", None]), (3, ["b", None, "x y"])]


def test_skip_values_without_trimming_are_exact(tmp_path: Path) -> None:
    _, rows, _ = read(tmp_path, """
        a,b
        NA, NA
        -,x
        """, ReadSettings(skip_values=("NA", "-")))

    assert rows == [(2, [None, " NA"]), (3, [None, "x"])]


def test_metadata_tags_stay_out_of_blank_rows(tmp_path: Path) -> None:
    _, rows, _ = read(tmp_path, """
        site=a
        v
        1

        2
        """, ReadSettings(metadata_rows=1, metadata_separators=("=",)))

    assert rows == [(3, ["1", "a"]), (4, [None, None]), (5, ["2", "a"])]


@pytest.mark.parametrize(("wins", "expected"), [(True, "1.1"), (False, "1.2")])
def test_a_metadata_key_that_names_a_column(tmp_path: Path, wins: bool, expected: str) -> None:
    header, rows, _ = read(tmp_path, """
        Version=1.1
        Version,v
        1.2,7
        """, ReadSettings(metadata_rows=1, metadata_separators=("=",), metadata_wins=wins))

    assert header == ("Version", "v")
    assert rows == [(3, [expected, "7"])]


def test_metadata_lines_without_a_separator_or_key_give_no_tag(tmp_path: Path) -> None:
    source_text = """
        just text
        =no key
        a:b=c
        v
        1
        """
    header, rows, _ = read(tmp_path, source_text, ReadSettings(metadata_rows=3, metadata_separators=("=", ":", "=")))

    assert header == ("v", "a:b")  # separators are tried in the given order (equal lengths)
    assert rows == [(5, ["1", "c"])]


def test_longer_metadata_separators_are_tried_first(tmp_path: Path) -> None:
    header, rows, _ = read(tmp_path, "a:b:=c\nv\n1\n", ReadSettings(metadata_rows=1, metadata_separators=(":", ":=")))

    assert header == ("v", "a:b")
    assert rows == [(3, ["1", "c"])]


def test_column_types_by_position_are_bound_to_the_header(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("skip,a,b\n0,1,2\n")
    settings = ReadSettings(skip_columns=1, column_types=(FieldType.INTEGER, FieldType.STRING))
    source = open_source(str(path), settings=settings)
    source.close()
    assert source.column_types == {"a": FieldType.INTEGER, "b": FieldType.STRING}

    with pytest.raises(MappingError, match=r"3 column types are given for 2 columns \(a, b\)"):
        open_source(str(path), settings=ReadSettings(skip_columns=1, column_types=(FieldType.INTEGER,) * 3))


def test_a_bom_before_skipped_lines_is_dropped(tmp_path: Path) -> None:
    header, rows, _ = read(tmp_path, "", ReadSettings(header_rows=1, trim_space=True),
                           raw=b"\xef\xbb\xbfa,b\n1,2\n")
    assert header == ("a", "b")
    assert rows == [(2, ["1", "2"])]


def test_a_header_only_file_has_no_rows(tmp_path: Path) -> None:
    assert read(tmp_path, "# c\na,b\n", ReadSettings(comment="#")) == (("a", "b"), [], [])


@pytest.mark.parametrize(("data", "settings", "message"), [
    (b"one line\n", ReadSettings(skip_rows=2), "the file has 1 lines, fewer than the 2 to skip"),
    (b"a,b\n", ReadSettings(header_rows=2), "the file ends before its 2 header line(s)"),
    (b"# only comments\n", ReadSettings(comment="#"), "the file ends before its 1 header line(s)"),
    (b"k=\xff\na\n1\n", ReadSettings(metadata_rows=1, metadata_separators=("=",)), ":1: the metadata line is not valid UTF-8"),
])
def test_files_too_short_for_their_settings(tmp_path: Path, data: bytes, settings: ReadSettings, message: str) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        open_source(str(path), settings=settings)
    assert message in str(caught.value)


# ---------------------------------------------------------------- each option end to end (csv2lp --config)


def convert(tmp_path: Path, csv_text: str, config: str, *args: str) -> tuple[int, list[str], str]:
    """Run `csv2lp convert in.csv --config telegraf.conf ARGS`: exit status, output lines, stderr."""
    from click.testing import CliRunner

    from converter.cli import main

    (tmp_path / "in.csv").write_text(textwrap.dedent(csv_text).lstrip("\n"))
    (tmp_path / "telegraf.conf").write_text(textwrap.dedent(config))
    runner = CliRunner()
    result = runner.invoke(main, ["convert", str(tmp_path / "in.csv"), "--config", str(tmp_path / "telegraf.conf"),
                                  "--rejects", str(tmp_path / "rejects.csv"), "-q", *args])
    return result.exit_code, result.stdout.splitlines(), result.stderr


def rejected_lines(tmp_path: Path) -> list[tuple[int, str]]:
    import csv

    path = tmp_path / "rejects.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [(int(row[1]), row[2]) for row in list(csv.reader(f))[1:]]


def test_telegrafs_metadata_example(tmp_path: Path) -> None:
    # The second example of Telegraf's CSV parser README (its output there is sketchy: "cpu" as the
    # name though no measurement column is set, integers without `i`, a time 7 hours off).
    status, lines, _ = convert(tmp_path, """
        # Version=1.1
        # File Created: 2021-11-17T07:02:45+10:00
        Version,measurement,cpu,time_user,time_system,time_idle,time
        1.2,cpu,cpu0,42,42,42,2018-09-13T13:03:28Z
        """, """
        [[inputs.file]]
          files = ["example"]
          data_format = "csv"
          csv_metadata_rows = 2
          csv_metadata_separators = [":", "="]
          csv_metadata_trim_set = " #"
          csv_header_row_count = 1
          csv_tag_columns = ["Version","cpu"]
          csv_timestamp_column = "time"
          csv_timestamp_format = "2006-01-02T15:04:05Z07:00"
        """, "-m", "file")

    assert lines == [r"file,File\ Created=2021-11-17T07:02:45+10:00,Version=1.1,cpu=cpu0 "
                     r'measurement="cpu",time_user=42,time_system=42,time_idle=42 1536843808000000000']
    assert status == 0


def test_tag_overwrite_keeps_the_columns_value(tmp_path: Path) -> None:
    _, lines, _ = convert(tmp_path, """
        Version=1.1
        Version,v
        1.2,7
        """, """
        csv_metadata_rows = 1
        csv_metadata_separators = ["="]
        csv_header_row_count = 1
        csv_tag_columns = ["Version"]
        csv_tag_overwrite = true
        """, "-m", "m")

    assert lines == ["m,Version=1.2 v=7"]


def test_a_metadata_key_that_names_a_field_column_is_refused(tmp_path: Path) -> None:
    status, lines, stderr = convert(tmp_path, "v=1\nv,w\n1,2\n", """
        csv_metadata_rows = 1
        csv_metadata_separators = ["="]
        csv_header_row_count = 1
        """)

    assert "the metadata tag 'v' has the name of a column that is not a tag column" in stderr
    assert (status, lines) == (1, [])


def test_skip_rows_two_header_rows_skip_columns_and_unix_ms(tmp_path: Path) -> None:
    status, lines, _ = convert(tmp_path, """
        logger 7 export
        -----
        row,temp,rain,ti
        ,_c,_mm,me
        1,20.5,0,1700000000123
        2,19,1.5,1700000001000
        """, """
        csv_skip_rows = 2
        csv_header_row_count = 2
        csv_skip_columns = 1
        csv_column_types = ["float", "float", "int"]
        csv_timestamp_column = "time"
        csv_timestamp_format = "unix_ms"
        """, "-m", "w")

    assert lines == ["w temp_c=20.5,rain_mm=0 1700000000123000000", "w temp_c=19,rain_mm=1.5 1700000001000000000"]
    assert status == 0


def test_column_names_delimiter_and_column_types(tmp_path: Path) -> None:
    status, lines, _ = convert(tmp_path, """
        web1;0.5;3;true;up;1700000000
        web2;1.25;4;F;down;1700000060
        """, """
        csv_column_names = ["host", "load", "procs", "ok", "state", "ts"]
        csv_column_types = ["string", "float", "int", "bool", "string", "int"]
        csv_delimiter = ";"
        csv_tag_columns = ["host"]
        csv_timestamp_column = "ts"
        csv_timestamp_format = "unix"
        """, "-m", "sys")

    assert lines == ['sys,host=web1 load=0.5,procs=3i,ok=true,state="up" 1700000000000000000',
                     'sys,host=web2 load=1.25,procs=4i,ok=false,state="down" 1700000060000000000']
    assert status == 0


def test_the_delimiter_flag_beats_csv_delimiter(tmp_path: Path) -> None:
    _, lines, _ = convert(tmp_path, "a|b\n1|2\n", "csv_header_row_count = 1\ncsv_delimiter = \";\"\n",
                          "-m", "m", "-d", "|")
    assert lines == ["m a=1,b=2"]


def test_comments_trim_space_and_a_go_layout_in_a_time_zone(tmp_path: Path) -> None:
    status, lines, _ = convert(tmp_path, """
        # exported 2024-01-01
        site, level, note, when
        # a comment
         north , 1.5, a b ,31/12/2023 23:00:00
        south,  2,  c,01/07/2024 12:00:00
        #""", """
        csv_header_row_count = 1
        csv_comment = "#"
        csv_trim_space = true
        csv_tag_columns = ["site"]
        csv_timestamp_column = "when"
        csv_timestamp_format = "02/01/2006 15:04:05"
        csv_timezone = "Europe/Berlin"
        """, "-m", "lvl")

    assert lines == ['lvl,site=north level=1.5,note="a b" 1704060000000000000',
                     'lvl,site=south level=2,note="c" 1719828000000000000']
    assert status == 0


def test_fractional_seconds_through_an_iso_layout(tmp_path: Path) -> None:
    status, lines, _ = convert(tmp_path, """
        k,v,t
        a,1,2024-05-06T07:08:09.123456789+02:00
        b,2,2024-05-06T07:08:09Z
        """, """
        csv_header_row_count = 1
        csv_tag_columns = ["k"]
        csv_timestamp_column = "t"
        csv_timestamp_format = "2006-01-02T15:04:05.999999999Z07:00"
        """, "-m", "m")
    assert lines == ["m,k=a v=1 1714972089123456789", "m,k=b v=2 1714979289000000000"]
    assert status == 0


def test_skip_values_leave_fields_and_tags_out(tmp_path: Path) -> None:
    status, lines, _ = convert(tmp_path, """
        sensor,a,b,t
        x,1.5,NA,1700000000
        NA,,2.5,1700000001
        """, """
        csv_header_row_count = 1
        csv_skip_values = ["", "NA"]
        csv_tag_columns = ["sensor"]
        csv_timestamp_column = "t"
        csv_timestamp_format = "unix"
        """, "-m", "m")

    assert lines == ["m,sensor=x a=1.5 1700000000000000000", "m b=2.5 1700000001000000000"]
    assert status == 0


def test_skip_errors_is_on_error_skip_and_the_flag_beats_it(tmp_path: Path) -> None:
    csv_text = """
        # header comes next
        id,n,t
        # comment
        a,1,1700000000
        b,oops,1700000001
        c,3,not-a-time
        """
    config = """
        csv_header_row_count = 1
        csv_comment = "#"
        csv_skip_errors = true
        csv_column_types = ["string", "int", "int"]
        csv_tag_columns = ["id"]
        csv_timestamp_column = "t"
        csv_timestamp_format = "unix"
        """
    status, lines, _ = convert(tmp_path, csv_text, config, "-m", "m")
    assert lines == ["m,id=a n=1i 1700000000000000000"]
    assert (status, rejected_lines(tmp_path)) == (3, [])

    status, lines, _ = convert(tmp_path, csv_text, config, "-m", "m", "--on-error", "quarantine")
    assert lines == ["m,id=a n=1i 1700000000000000000"]
    # Physical lines: the comment lines count.
    assert rejected_lines(tmp_path) == [(5, "invalid integer in column 'n'"), (6, "unparseable time in column 't'")]
    assert status == 3


def test_measurement_column_and_name_override(tmp_path: Path) -> None:
    csv_text = """
        kind,host,v
        cpu,a,1.5
        mem,a,2.5
        """
    config = """
        csv_header_row_count = 1
        csv_measurement_column = "kind"
        csv_tag_columns = ["host"]
        """
    _, lines, _ = convert(tmp_path, csv_text, config)
    assert lines == ["cpu,host=a v=1.5", "mem,host=a v=2.5"]

    _, lines, _ = convert(tmp_path, csv_text, config + 'name_override = "fixed"\n')
    assert lines == ["fixed,host=a v=1.5", "fixed,host=a v=2.5"]


def test_a_csv2lp_mapping_file_is_still_a_mapping_file(tmp_path: Path) -> None:
    _, lines, _ = convert(tmp_path, "a,b\n1,x\n", 'measurement = "m"\n[tags]\nb = "b"\n')
    assert lines == ["m,b=x a=1"]


def test_inspect_refuses_telegraf_read_settings(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from converter.cli import main

    (tmp_path / "in.csv").write_text("# c\na\n1\n")
    (tmp_path / "telegraf.conf").write_text('csv_header_row_count = 1\ncsv_comment = "#"\n')
    result = CliRunner().invoke(main, ["inspect", str(tmp_path / "in.csv"), "--config", str(tmp_path / "telegraf.conf")])

    assert "inspect does not apply the header, line and delimiter options of a Telegraf config" in result.stderr
    assert result.exit_code == 1
