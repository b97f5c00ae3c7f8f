"""converter.pipeline: every row read ends in exactly one place, a line or a counted reject.

Inputs are generated with a known fate for each row (line, or reject with its reason and
physical line), spread over several files and many small blocks; the run must give
exactly those lines, those rejects and balanced books, under each --on-error mode.
"""

from __future__ import annotations

import csv
import gzip
import io
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from converter import (
    BadRowError,
    ConvertOptions,
    FieldSpec,
    FieldType,
    MappingError,
    MappingSpec,
    OnError,
    Precision,
    TagSpec,
    TimeSpec,
    convert,
    load_preset,
    open_output,
)
from converter.mapping import OtherColumns
from converter.plan.file_plan import default_measurement
from converter.books.progress import Progress
from support.data import SAMPLE

SMALL_BLOCK = 65536
MAPPING = MappingSpec(
    measurement="m",
    tags=(TagSpec("id"),),
    fields=(FieldSpec("value", type=FieldType.FLOAT),),
    other_columns=OtherColumns.IGNORE,  # `note` holds quoted line breaks: read, never written
    time=TimeSpec(column="time", format="epoch_s"),
)
BASE_TIME = 1_600_000_000


@dataclass
class Expected:
    data: bytes
    lines: list[str] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)  # where each of `lines` comes from
    rejects: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    blank_lines: int = 0


def generated(seed: int, rows: int, prefix: str) -> Expected:
    """A CSV whose every row has a known fate."""
    rnd = random.Random(seed)
    out = Expected(b"")
    text = ["id,value,note,time\n"]
    line = 2
    for i in range(rows):
        row_id, stamp = f"{prefix}{i}", BASE_TIME + i
        kind = rnd.random()
        if kind < 0.03:
            text.append(f"{row_id},1.5\n")
            out.rejects.append((line, "ragged row: 2 cells where the header has 4"))
        elif kind < 0.06:
            text.append(f"{row_id},warm,n,{stamp}\n")
            out.rejects.append((line, "invalid float in column 'value'"))
        elif kind < 0.08:
            text.append(f"{row_id},2.5,n,soon\n")
            out.rejects.append((line, "unparseable time in column 'time'"))
        elif kind < 0.10:
            text.append(f"{row_id},,n,{stamp}\n")
            out.rejects.append((line, "no field: every field cell is empty, NaN or infinite"))
        elif kind < 0.12:
            text.append("\n")
            out.blank_lines += 1
        elif kind < 0.25:
            text.append(f'{row_id},{i}.25,"a note\nover two lines",{stamp}\n')
            out.lines.append(f"m,id={row_id} value={i}.25 {stamp}")
            out.line_numbers.append(line)
            line += 1
        else:
            text.append(f"{row_id},{i}.5,{'x' * rnd.randint(0, 80)},{stamp}\n")
            out.lines.append(f"m,id={row_id} value={i}.5 {stamp}")
            out.line_numbers.append(line)
        line += 1
    out.data = "".join(text).encode()
    return out


def run(inputs: list[str], tmp_path: Path, *, mapping: MappingSpec = MAPPING, **options):
    options.setdefault("rejects_path", str(tmp_path / "rejects.csv"))
    options.setdefault("block_size", SMALL_BLOCK)
    options.setdefault("precision", Precision.S)
    sink = open_output(str(tmp_path / "out.lp"))
    try:
        summary = convert(inputs, mapping=mapping, options=ConvertOptions(**options), sink=sink)
    finally:
        sink.close()
    return summary, (tmp_path / "out.lp").read_text().splitlines()


def rejects_in(path: Path) -> list[tuple[str, int, str]]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        return [(row[0], int(row[1]), row[2]) for row in list(csv.reader(f))[1:]]


def assert_books_balance(summary) -> None:
    assert summary.rows_read == summary.lines_written + summary.rows_rejected
    assert summary.rows_rejected == sum(summary.rejects_by_reason.values())


# ---------------------------------------------------------------- the books


def test_every_sample_row_becomes_exactly_one_line_in_order(tmp_path: Path) -> None:
    summary, lines = run([str(SAMPLE)], tmp_path, mapping=load_preset("movebank"))

    with open(SAMPLE, newline="") as f:
        event_ids = [row["event-id"] for row in csv.DictReader(f)]
    assert (summary.rows_read, summary.lines_written, summary.rows_rejected) == (1200, 1200, 0)
    assert [line.split("event_id=")[1].split("i")[0] for line in lines] == event_ids
    assert summary.rejects_files == []
    assert not (tmp_path / "rejects.csv").exists()


@pytest.mark.parametrize("on_error", [OnError.QUARANTINE, OnError.SKIP])
def test_known_fates_over_many_blocks_and_files(tmp_path: Path, on_error: OnError) -> None:
    first, second = generated(1, 6000, "a"), generated(2, 6000, "b")
    (tmp_path / "one.csv").write_bytes(first.data)
    (tmp_path / "two.csv.gz").write_bytes(gzip.compress(second.data))
    assert len(first.data) > 4 * SMALL_BLOCK

    summary, lines = run([str(tmp_path / "one.csv"), str(tmp_path / "two.csv.gz")], tmp_path, on_error=on_error)

    assert lines == first.lines + second.lines
    expected_rejects = [(str(tmp_path / "one.csv"), *r) for r in first.rejects] + \
                       [(str(tmp_path / "two.csv.gz"), *r) for r in second.rejects]
    if on_error is OnError.QUARANTINE:
        assert rejects_in(tmp_path / "rejects.csv") == expected_rejects
    else:
        assert not (tmp_path / "rejects.csv").exists()
    assert summary.rows_rejected == len(expected_rejects)
    assert dict(summary.rejects_by_reason) == {
        reason: sum(1 for *_, r in expected_rejects if r == reason) for *_, reason in expected_rejects
    }
    assert summary.blank_lines == first.blank_lines + second.blank_lines
    assert summary.files == 2
    assert_books_balance(summary)


def test_fail_stops_at_the_first_bad_row_with_the_rows_before_it_written(tmp_path: Path) -> None:
    data = generated(3, 6000, "a")
    (tmp_path / "in.csv").write_bytes(data.data)
    first_bad_line, reason = data.rejects[0]

    with pytest.raises(BadRowError) as error:
        run([str(tmp_path / "in.csv")], tmp_path, on_error=OnError.FAIL)

    summary = error.value.summary  # type: ignore[attr-defined]
    lines = (tmp_path / "out.lp").read_text().splitlines()
    assert str(error.value).startswith(f"{tmp_path / 'in.csv'}:{first_bad_line}: {reason}")
    assert lines == [lp for lp, at in zip(data.lines, data.line_numbers) if at < first_bad_line]
    assert (summary.rows_rejected, summary.lines_written) == (1, len(lines))
    assert summary.stopped_at == str(error.value)
    assert not (tmp_path / "rejects.csv").exists()
    assert_books_balance(summary)


def test_fail_after_the_first_block_keeps_the_earlier_blocks(tmp_path: Path) -> None:
    good = "".join(f"g{i},{i}.5,n,{BASE_TIME + i}\n" for i in range(5000))
    (tmp_path / "in.csv").write_text(f"id,value,note,time\n{good}bad,x,n,{BASE_TIME}\n{good}")

    with pytest.raises(BadRowError, match=r":5002: invalid float in column 'value': 'x'\."):
        run([str(tmp_path / "in.csv")], tmp_path, on_error=OnError.FAIL)

    assert (tmp_path / "out.lp").read_text().splitlines() == [
        f"m,id=g{i} value={i}.5 {BASE_TIME + i}" for i in range(5000)
    ]


# ---------------------------------------------------------------- the rejects file


def test_inputs_with_another_header_get_a_rejects_file_of_their_own(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,value,time\na1,x,1600000000\n")
    (tmp_path / "b.csv").write_text("id,value,extra,time\nb1,y,e,1600000000\n")
    (tmp_path / "c.csv").write_text("id,value,time\nc1,z,1600000000\n")
    mapping = MappingSpec(measurement="m", tags=(TagSpec("id"),), fields=(FieldSpec("value", type=FieldType.FLOAT),),
                          other_columns=OtherColumns.IGNORE, time=TimeSpec(column="time", format="epoch_s"))

    summary, lines = run([str(tmp_path / n) for n in ("a.csv", "b.csv", "c.csv")], tmp_path, mapping=mapping)

    assert lines == []
    assert summary.rejects_files == [str(tmp_path / "rejects.csv"), str(tmp_path / "rejects.2.csv")]
    assert (tmp_path / "rejects.csv").read_text().splitlines() == [
        "file,line,reason,value,id,value,time",
        f"{tmp_path / 'a.csv'},2,invalid float in column 'value',x,a1,x,1600000000",
        f"{tmp_path / 'c.csv'},2,invalid float in column 'value',z,c1,z,1600000000",
    ]
    assert (tmp_path / "rejects.2.csv").read_text().splitlines() == [
        "file,line,reason,value,id,value,extra,time",
        f"{tmp_path / 'b.csv'},2,invalid float in column 'value',y,b1,y,e,1600000000",
    ]


def test_checks_and_ragged_rows_of_one_block_are_saved_in_line_order(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("id,value,note,time\na,x,n,1600000000\nb\nc,y,n,1600000000\nd,1,n\n")

    run([str(tmp_path / "in.csv")], tmp_path)

    assert [line for _, line, _ in rejects_in(tmp_path / "rejects.csv")] == [2, 3, 4, 5]


# ---------------------------------------------------------------- before any row is read


def test_every_header_is_checked_before_any_row_is_written(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,value,note,time\na,1,n,1600000000\n")
    (tmp_path / "b.csv").write_text("id,val,note,time\nb,1,n,1600000000\n")

    with pytest.raises(MappingError, match=r"b\.csv: column 'value' \(field\) is not in the header\. "
                                           r"Did you mean 'val'\? Columns: 'id', 'val', 'note', 'time'\."):
        run([str(tmp_path / "a.csv"), str(tmp_path / "b.csv")], tmp_path)

    assert (tmp_path / "out.lp").read_text() == ""


def test_s2_level_needs_float_lat_and_lon(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("id,value,note,time\na,1,n,1600000000\n")

    with pytest.raises(MappingError, match=r"--s2-level needs float fields named 'lat' and 'lon'"):
        run([str(tmp_path / "in.csv")], tmp_path, s2_level=11)


@pytest.mark.parametrize(
    "item, measurement",
    [("gps.csv", "gps"), ("exports/gps.csv.gz", "gps"), ("-", "stdin"), (".hidden", ".hidden")],
)
def test_default_measurement_is_the_file_name_without_extensions(item: str, measurement: str) -> None:
    assert default_measurement(item) == measurement


# ---------------------------------------------------------------- stdin and progress


def test_stdin_stream(tmp_path: Path) -> None:
    data = generated(4, 300, "s")
    sink = open_output(str(tmp_path / "out.lp"))

    summary = convert(["-"], mapping=MAPPING,
                      options=ConvertOptions(rejects_path=str(tmp_path / "r.csv"), precision=Precision.S),
                      sink=sink, stdin=io.BytesIO(gzip.compress(data.data)))
    sink.close()

    assert (tmp_path / "out.lp").read_text().splitlines() == data.lines
    assert [(line, reason) for _, line, reason in rejects_in(tmp_path / "r.csv")] == data.rejects
    assert {f for f, _, _ in rejects_in(tmp_path / "r.csv")} == {"<stdin>"}
    assert_books_balance(summary)


def test_progress_reports_bytes_on_disk_up_to_the_total(tmp_path: Path) -> None:
    (tmp_path / "in.csv.gz").write_bytes(gzip.compress(generated(5, 6000, "p").data))
    reports: list[Progress] = []
    sink = open_output(str(tmp_path / "out.lp"))

    summary = convert([str(tmp_path / "in.csv.gz")], mapping=MAPPING,
                      options=ConvertOptions(rejects_path=str(tmp_path / "r.csv"), block_size=SMALL_BLOCK),
                      sink=sink, progress=reports.append)
    sink.close()

    size = (tmp_path / "in.csv.gz").stat().st_size
    assert len(reports) > 1
    assert all(r.bytes_total == size for r in reports)
    assert [r.bytes_done for r in reports] == sorted(r.bytes_done for r in reports)
    assert reports[-1].bytes_done == size
    assert reports[-1].rows == summary.rows_read
