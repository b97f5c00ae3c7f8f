"""converter.inspect: the numbers `csv2lp inspect` reports, checked against independent counts.

Expected numbers come either from the bundled sample (fixed) or from Python's csv module
reading the same file row by row; generated files are built so the answer is known.
"""

from __future__ import annotations

import csv
import gzip
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import converter.inspect.report as inspect_module
from converter import ConvertOptions, MappingError, convert, load_preset, open_output
from converter.cli import main
from converter.inspect import Role, inspect_inputs, render
from converter.mapping import NO_TIME, FieldSpec, FieldType, MappingSpec, OtherColumns, TagSpec, TimeSpec
from support.data import FISHERS, SAMPLE

MOVEBANK_TAG_COLUMNS = {
    "study": "study-name",
    "individual": "individual-local-identifier",
    "tag": "tag-local-identifier",
    "taxon": "individual-taxon-canonical-name",
    "sensor": "sensor-type",
}


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def independent_counts(rows: list[dict[str, str]], tag_columns: dict[str, str]) -> dict:
    """Per-row reference: empty cells per column, distinct tag values, (tag key, value) sets."""
    empty = {column: sum(1 for r in rows if r[column] == "") for column in rows[0]}
    distinct = {column: len({r[column] for r in rows if r[column] != ""}) for column in tag_columns.values()}
    series = {tuple((k, r[c]) for k, c in sorted(tag_columns.items()) if r[c] != "") for r in rows}
    return {"empty": empty, "distinct": distinct, "series": len(series)}


# ---------------------------------------------------------------- the bundled sample


@pytest.fixture(scope="module")
def sample_report():
    return inspect_inputs([str(SAMPLE)], mapping=load_preset("movebank"), sample_lines=5)


def test_sample_rows_and_lines(sample_report):
    assert (sample_report.rows_read, sample_report.lines, sample_report.rows_rejected) == (1200, 1200, 0)
    assert sample_report.rejects_by_reason == {}
    assert sample_report.measurement == "movebank"


def test_sample_individual_tag_has_three_values_and_three_series(sample_report):
    individual = sample_report.column("individual-local-identifier")
    assert (individual.role, individual.key, individual.distinct) == (Role.TAG, "individual", 3)
    assert sample_report.column("study-name").distinct == 1
    assert sample_report.series == 3
    assert sample_report.warnings == []


@pytest.mark.parametrize("column, key", [("location-lat", "lat"), ("location-long", "lon")])
def test_sample_coordinates_are_float_fields_empty_in_773_rows(sample_report, column, key):
    report = sample_report.column(column)
    assert (report.role, report.key, report.type, report.type_inferred) == (Role.FIELD, key, "float", False)
    assert (report.rows, report.empty) == (1200, 773)
    assert round(report.empty_share * 100, 1) == 64.4


def test_sample_roles_and_declared_types(sample_report):
    by_column = {c.column: c for c in sample_report.columns}
    assert list(by_column) == SAMPLE.read_text().splitlines()[0].split(",")  # header order
    assert by_column["timestamp"].role is Role.TIME and by_column["timestamp"].type == "iso8601"
    assert by_column["event-id"].type == "integer"
    assert by_column["visible"].type == "boolean"
    assert by_column["eobs:used-time-to-get-fix"].type == "integer"
    assert {c.column for c in sample_report.columns if c.role is Role.TAG} == set(MOVEBANK_TAG_COLUMNS.values())


def test_sample_lines_are_the_first_lines_convert_writes(sample_report, tmp_path):
    out = tmp_path / "out.lp"
    sink = open_output(str(out))
    convert([str(SAMPLE)], mapping=load_preset("movebank"), options=ConvertOptions(rejects_path=str(tmp_path / "r.csv")),
            sink=sink)
    sink.close()
    assert sample_report.sample == out.read_text().splitlines()[:5]


def test_sample_text_shows_the_numbers(sample_report):
    text = render(sample_report)
    assert "rows: 1,200 read, 1,200 would be written, 0 rejected" in text
    assert "series (measurement + tag set): 3" in text
    lat_line = next(line for line in text.splitlines() if line.startswith("location-lat "))
    assert lat_line.split() == ["location-lat", "field", "lat", "float", "64.4%"]
    individual_line = next(line for line in text.splitlines() if line.startswith("individual-local-identifier "))
    assert individual_line.split() == ["individual-local-identifier", "tag", "individual", "string", "0.0%", "3"]
    assert "warning" not in text


def test_to_dict_carries_the_numbers(sample_report):
    data = sample_report.to_dict()
    assert data["rows_read"] == 1200 and data["series"] == 3
    lat = next(c for c in data["columns"] if c["column"] == "location-lat")
    assert (lat["empty"], lat["empty_share"], lat["type"]) == (773, 0.6442, "float")


# ---------------------------------------------------------------- the real fishers export


def test_fishers_numbers_equal_a_row_by_row_count(shared_movebank):
    with gzip.open(FISHERS, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    expected = independent_counts(rows, MOVEBANK_TAG_COLUMNS)

    report = inspect_inputs([str(FISHERS)], mapping=load_preset("movebank"), sample_lines=1)

    assert report.rows_read == report.lines == len(rows) == 47_347
    assert report.series == expected["series"] == 8
    for column in MOVEBANK_TAG_COLUMNS.values():
        assert report.column(column).distinct == expected["distinct"][column], column
    for column, n_empty in expected["empty"].items():
        assert report.column(column).empty == n_empty, column
    assert report.warnings == []


# ---------------------------------------------------------------- cardinality


def event_rows(n: int, individuals: int = 4) -> str:
    lines = ["event-id,individual,timestamp,lat"]
    lines += [f"{1000 + i},bird{i % individuals},2020-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z,{i / 100}" for i in range(n)]
    return "\n".join(lines) + "\n"


def test_event_id_as_tag_is_warned_about(tmp_path):
    path = write(tmp_path, event_rows(2000))
    mapping = MappingSpec(measurement="birds", tags=(TagSpec("event-id"), TagSpec("individual")))

    report = inspect_inputs([str(path)], mapping=mapping)

    assert report.column("event-id").distinct == 2000
    assert report.column("individual").distinct == 4
    assert report.series == 2000
    assert len(report.warnings) == 1
    warning = report.warnings[0]
    assert "'event-id' has 2,000 distinct values in 2,000 lines (100% of them)" in warning
    assert "--field event-id instead of --tag event-id" in warning
    assert "warning: tag column 'event-id'" in render(report)


def test_few_values_over_many_rows_are_not_warned_about(tmp_path):
    path = write(tmp_path, event_rows(2000, individuals=150))  # 7.5% distinct: under the 10% line
    report = inspect_inputs([str(path)], mapping=MappingSpec(measurement="birds", tags=(TagSpec("individual"),)))
    assert report.column("individual").distinct == 150
    assert report.warnings == []


def test_share_warning_needs_enough_rows(tmp_path):
    path = write(tmp_path, event_rows(999))  # every id distinct, but fewer than 1,000 rows
    report = inspect_inputs([str(path)], mapping=MappingSpec(measurement="birds", tags=(TagSpec("event-id"),)))
    assert report.column("event-id").distinct == 999
    assert report.warnings == []


def test_counts_past_the_cap_say_more_than(tmp_path, monkeypatch):
    monkeypatch.setattr(inspect_module, "DISTINCT_CAP", 100)
    monkeypatch.setattr(inspect_module, "SERIES_CAP", 100)
    path = write(tmp_path, event_rows(500))
    mapping = MappingSpec(measurement="birds", tags=(TagSpec("event-id"), TagSpec("individual")))

    report = inspect_inputs([str(path)], mapping=mapping, block_size=4096)  # several blocks

    event = report.column("event-id")
    assert (event.distinct, event.distinct_over_cap) == (None, True)
    assert report.column("individual").distinct == 4
    assert (report.series, report.series_over_cap) == (None, True)
    text = render(report)
    assert "series (measurement + tag set): more than 100" in text
    assert "tag column 'event-id' has more than 100 distinct values" in text
    assert "the lines form more than 100 series" in text
    assert "The tag with the most values is 'event-id'" in text


def test_series_count_empty_tags_and_measurement_column(tmp_path):
    path = write(tmp_path, """
        kind,site,depth,value
        water,a,,1
        water,a,,2
        water,b,1,3
        air,a,,4
        air,,,5
        water,a,2,6
        ,a,2,7
    """)
    mapping = MappingSpec(measurement_column="kind", tags=(TagSpec("site"), TagSpec("depth")), time=TimeSpec(column=""))
    report = inspect_inputs([str(path)], mapping=mapping)
    # (water,a) (water,b,1) (air,a) (air) (water,a,2); the row without a measurement is rejected.
    assert report.series == 5
    assert report.rows_rejected == 1 and report.column("kind").rejected == 1
    assert report.measurement is None
    assert report.column("kind").role is Role.MEASUREMENT and report.column("kind").distinct == 2
    assert report.column("site").distinct == 2 and report.column("depth").distinct == 2


# ---------------------------------------------------------------- types, rejects, roles


def late_numeric_column(n: int, empty_first: int) -> str:
    lines = ["time,station,depth"]
    lines += [f"{1_600_000_000 + i},s{i % 3},{'' if i < empty_first else i / 4}" for i in range(n)]
    return "\n".join(lines) + "\n"


def test_auto_column_empty_for_the_first_blocks_then_numeric_is_float(tmp_path):
    path = write(tmp_path, late_numeric_column(3000, empty_first=2000))
    mapping = MappingSpec(measurement="m", tags=(TagSpec("station"),), time=TimeSpec(column="time", format="epoch_s"))

    report = inspect_inputs([str(path)], mapping=mapping, block_size=4096)

    depth = report.column("depth")
    assert (depth.type, depth.type_inferred) == ("float", True)
    assert (depth.rows, depth.empty) == (3000, 2000)
    # Inferred from a block that starts well after line 2: the first blocks were all empty.
    inferred_line = int(depth.type_inferred_at.rsplit(":", 1)[1])
    assert 100 < inferred_line <= 2002
    # The same rule as convert: its run infers the same type.
    sink = open_output(str(tmp_path / "out.lp"))
    summary = convert([str(path)], mapping=mapping, sink=sink,
                      options=ConvertOptions(block_size=4096, rejects_path=str(tmp_path / "r.csv")))
    sink.close()
    assert summary.inferred_types == {"depth": "float"}


def test_rejected_rows_and_dropped_values_are_counted_per_column(tmp_path):
    path = write(tmp_path, """
        time,depth,temp,note
        1,1.5,3,a
        2,deep,4,b
        3,NaN,5,c
        4,inf,x,d
        5,2,,e
        ,3,6,f
    """)
    mapping = MappingSpec(measurement="m", fields=(FieldSpec("depth", type=FieldType.FLOAT),
                                                   FieldSpec("temp", type=FieldType.INTEGER)),
                          time=TimeSpec(column="time", format="epoch_s"))
    report = inspect_inputs([str(path)], mapping=mapping)

    assert report.column("depth").rejected == 1  # 'deep'
    assert report.column("depth").dropped == 1  # NaN; the inf sits in a rejected row, which is no line
    assert report.column("temp").rejected == 1  # 'x'
    assert report.column("time").rejected == 1  # empty time
    assert report.fields_dropped == 1
    assert (report.rows_read, report.lines, report.rows_rejected) == (6, 3, 3)
    assert report.rejects_by_reason == {
        "invalid float in column 'depth'": 1,
        "invalid integer in column 'temp'": 1,
        "empty time in column 'time'": 1,
    }
    assert report.column("note").type == "string" and report.column("note").type_inferred


def test_excluded_and_unmapped_columns_are_ignored(tmp_path):
    path = write(tmp_path, """
        time,a,b,c
        1,1,2,
        2,1,,
    """)
    spec = MappingSpec(measurement="m", fields=(FieldSpec("a"),), exclude=frozenset({"b"}),
                       other_columns=OtherColumns.IGNORE, time=TimeSpec(column="time", format="epoch_s"))
    report = inspect_inputs([str(path)], mapping=spec)
    assert [(c.column, c.role, c.ignored_because) for c in report.columns] == [
        ("time", Role.TIME, None),
        ("a", Role.FIELD, None),
        ("b", Role.IGNORED, "excluded"),
        ("c", Role.IGNORED, "not mapped, other_columns = ignore"),
    ]
    assert (report.column("b").empty, report.column("c").empty) == (1, 2)
    assert report.column("a").type == "float"


def test_missing_mapped_column_is_a_mapping_error(tmp_path):
    path = write(tmp_path, "time,a\n1,2\n")
    with pytest.raises(MappingError, match=r"column 'station' \(tag\) is not in the header"):
        inspect_inputs([str(path)], mapping=MappingSpec(measurement="m", tags=(TagSpec("station"),)))


# ---------------------------------------------------------------- the command


def test_cli_inspect_sample():
    result = CliRunner().invoke(main, ["inspect", str(SAMPLE), "--preset", "movebank", "-n", "2"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "rows: 1,200 read, 1,200 would be written, 0 rejected" in lines
    assert "series (measurement + tag set): 3" in lines
    assert any(line.split() == ["location-lat", "field", "lat", "float", "64.4%"] for line in lines)
    assert "first 2 line(s):" in lines
    assert lines[-1].startswith("movebank,individual=F1,sensor=gps,")
    assert result.stderr == ""


def test_cli_inspect_reads_stdin():
    result = CliRunner().invoke(main, ["inspect", "-", "--preset", "movebank", "-n", "0"], input=SAMPLE.read_bytes())
    assert result.exit_code == 0, result.output
    assert "input: -" in result.stdout and "series (measurement + tag set): 3" in result.stdout


def test_cli_inspect_missing_column_exits_1_with_the_mapping_error():
    result = CliRunner().invoke(main, ["inspect", str(SAMPLE), "--preset", "movebank", "--tag", "nosuch"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"csv2lp: error: {SAMPLE}: column 'nosuch' (tag) is not in the header.")


# ---------------------------------------------------------------- inspect counts what convert does


def convert_summary(path: Path, mapping: MappingSpec, tmp_path: Path, **options):
    sink = open_output(str(tmp_path / "out.lp"))
    try:
        return convert([str(path)], mapping=mapping, sink=sink,
                       options=ConvertOptions(rejects_path=str(tmp_path / "rejects.csv"), **options))
    finally:
        sink.close()


def test_totals_equal_convert_on_a_messy_file(tmp_path):
    path = write(tmp_path, """
        time,site,depth,note
        1,a,1.5,ok
        2,a,deep,bad float

        3,b,NaN,dropped value
        4,b,2,too,many,cells
        ,,,
        5,,inf,"multi
        line note"
        6,c\\,3,backslash at the end of a tag
    """)
    mapping = MappingSpec(measurement="m", tags=(TagSpec("site"),), column_types={"depth": FieldType.FLOAT},
                          time=TimeSpec(column="time", format="epoch_s"))

    report = inspect_inputs([str(path)], mapping=mapping)
    summary = convert_summary(path, mapping, tmp_path)

    assert (report.rows_read, report.lines, report.rows_rejected) == (
        summary.rows_read, summary.lines_written, summary.rows_rejected)
    assert report.rejects_by_reason == dict(summary.rejects_by_reason)
    assert (report.fields_dropped, report.blank_lines) == (summary.fields_dropped, summary.blank_lines)
    assert report.rows_read == report.lines + report.rows_rejected
    assert report.rows_rejected == 4 and report.fields_dropped == 1 and report.blank_lines == 2
    assert sum(c.rejected for c in report.columns) + 1 == report.rows_rejected  # + the ragged row: no column
    assert [report.column(name).rejected for name in ("site", "depth", "note")] == [1, 1, 1]
    assert sum(c.dropped for c in report.columns) == report.fields_dropped


def test_dropped_per_column_adds_up_on_the_albatrosses(shared_movebank):
    from support.data import ALBATROSSES

    report = inspect_inputs([str(ALBATROSSES)], mapping=load_preset("movebank"), sample_lines=0)
    assert report.fields_dropped > 0  # the Env-DATA columns hold NaN
    assert sum(c.dropped for c in report.columns) == report.fields_dropped
    assert all(c.type == "float" for c in report.columns if c.dropped)


def test_several_files_are_counted_together(tmp_path):
    first = write(tmp_path, "time,site,v\n1,a,1\n2,b,2\n", name="north.csv")
    second = write(tmp_path, "time,site,v\n1,a,1\n2,c,2\n3,,3\n", name="south.csv")
    mapping = MappingSpec(tags=(TagSpec("site"),), time=TimeSpec(column="time", format="epoch_s"))

    report = inspect_inputs([str(tmp_path / "*.csv")], mapping=mapping)

    assert report.inputs == [str(first), str(second)]
    assert report.measurement == "north, south"  # default measurement: each file's name
    assert (report.rows_read, report.column("site").rows, report.column("site").empty) == (5, 5, 1)
    assert report.column("site").distinct == 3
    # north: a, b; south: a, c, (no site): the same site in another measurement is another series.
    assert report.series == 5


ANNOTATED = textwrap.dedent("""\
    #datatype measurement,tag,double,dateTime:RFC3339
    m,host,load,time
    cpu,a,0.5,2020-01-01T00:00:00Z
    cpu,b,oops,2020-01-01T00:00:01Z

    #datatype measurement,long,dateTime:number
    m,count,t
    mem,7,1577836802000000000
    """)


def test_an_annotated_file_is_inspected_by_its_annotations_table_by_table(tmp_path):
    path = write(tmp_path, ANNOTATED)
    report = inspect_inputs([str(path)], mapping=MappingSpec())
    summary = convert([str(path)], mapping=MappingSpec(), sink=open_output(str(tmp_path / "out.lp")),
                      options=ConvertOptions(rejects_path=str(tmp_path / "r.csv")))
    assert (report.rows_read, report.lines, report.rows_rejected) == (3, 2, 1) == \
        (summary.rows_read, summary.lines_written, summary.rows_rejected)
    assert report.sample == (tmp_path / "out.lp").read_text().splitlines()
    roles = {c.column: (c.role, c.key, c.type) for c in report.columns}
    assert roles["m"][0] is Role.MEASUREMENT and roles["host"][:2] == (Role.TAG, "host")
    assert roles["load"] == (Role.FIELD, "load", "float") and roles["count"] == (Role.FIELD, "count", "integer")
    assert roles["time"][0] is Role.TIME and roles["t"][0] is Role.TIME
    assert report.rejects_by_reason == {"invalid float in column 'load'": 1}


def test_format_csv_inspects_an_annotated_file_as_plain_csv(tmp_path):
    path = write(tmp_path, ANNOTATED)
    result = CliRunner().invoke(main, ["inspect", str(path), "--format", "csv", "-m", "x", "--no-time"])
    assert result.exit_code == 0, result.output
    assert "#datatype measurement  field" in result.output
    annotated = CliRunner().invoke(main, ["inspect", str(path)])
    assert annotated.exit_code == 0 and "#datatype" not in annotated.output and "load" in annotated.output


def test_render_lists_the_ten_most_frequent_reasons_and_counts_the_others(tmp_path):
    rows = [",".join(["x"] * cells) for cells in range(4, 16) for _ in range(20 - cells)]
    path = write(tmp_path, "a,b\n1,2\n" + "\n".join(rows) + "\n")
    report = inspect_inputs([str(path)], mapping=MappingSpec(measurement="m", time=TimeSpec(column=NO_TIME)))
    assert len(report.rejects_by_reason) == 12
    text = render(report).splitlines()
    at = text.index(f"  {20 - 4} × ragged row: 4 cells where the header has 2")
    assert text[at + 10] == f"  and 2 other reasons ({(20 - 14) + (20 - 15)} rows)"
