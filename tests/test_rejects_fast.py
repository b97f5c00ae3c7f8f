"""converter.books.rejects: the rejects file, formatted with Arrow, is byte for byte what Python's
csv.writer wrote row by row.

The reference below is the writer as it was before: `csv.writer(lineterminator="\\n")` on a
UTF-8 text stream with errors="surrogateescape" and newline="", one `writerow` per rejected
row, cells decoded with surrogateescape, rows sorted by line with a stable sort (the
encoder's rows first, then the rows Arrow could not split, re-split with csv.reader).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converter.books import rejects as rejects_module

from converter import ConvertOptions, FieldSpec, FieldType, MappingSpec, TagSpec, TimeSpec, convert, open_output, pipeline
from converter.books import rowerrors
from converter.mapping import OtherColumns
from converter.books.rejects import LEAD_COLUMNS, RejectsWriter

# ---------------------------------------------------------------- the reference: the per-row writer


def _text(cell: bytes | None) -> str:
    return "" if cell is None else cell.decode("utf-8", errors="surrogateescape")


class ReferenceWriter:
    """The rejects file as csv.writer wrote it, row by row (one header only)."""

    def __init__(self, header: list[str]) -> None:
        self.buffer = io.BytesIO()
        self.stream = io.TextIOWrapper(self.buffer, encoding="utf-8", errors="surrogateescape", newline="",
                                       write_through=True)
        self.writer = csv.writer(self.stream, lineterminator="\n")
        self.writer.writerow(LEAD_COLUMNS + header)

    def block(self, file: str, checked: list[tuple[int, str, bytes | None, list[bytes | None]]],
              unsplit: list[tuple[int, str, str]], delimiter: str = ",") -> None:
        saves = [(line, [file, line, reason, _text(value), *map(_text, cells)])
                 for line, reason, value, cells in checked]
        for line, reason, text in unsplit:
            cells = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
            saves.append((line, [file, line, reason, "", *cells]))
        for _, row in sorted(saves, key=lambda save: save[0]):
            self.writer.writerow(row)

    def bytes(self) -> bytes:
        return self.buffer.getvalue()


def write_fast(path: Path, header: list[str], file: str, checked, unsplit, *, pad: int = 0,
               delimiter: str = ",") -> None:
    """`checked` rows through RejectsWriter.write_rows, as save_rejects hands them in.

    `pad` rows before and after each column make its arrays start at an offset, as slices do.
    """
    writer = RejectsWriter(path)
    columns = [pa.array([None] * pad + [cells[i] for *_, cells in checked] + [b"x"] * pad, pa.binary())
               .slice(pad, len(checked)) for i in range(len(header))]
    writer.write_rows(header, file, np.array([line for line, *_ in checked], dtype=np.int64),
                      [reason for _, reason, _, _ in checked], [value for _, _, value, _ in checked], columns,
                      unsplit=unsplit, delimiter=delimiter)
    writer.close()


# ---------------------------------------------------------------- a table of nasty cells

NASTY_CELLS: list[bytes | None] = [
    None, b"", b"plain", b"a,b", b",", b'"', b'""', b'say "hi"', b'"quoted"', b"\r", b"\n", b"\r\n", b"a\rb",
    b"a\nb", b"line\r\n", b" lead", b"trail ", b" ", b"  both  ", b"\t", b"\xff", b"\xff\xfe,", b"\xe2\x82",
    b'\xe2\x82"', b"\xed\xa0\x80", b"caf\xc3\xa9", "漢字🦊".encode(), b"\x00", b"a\x00,b", b"\x7f", b"'", b"\\",
    b"#", b";", b"=", b"\xc3", b"\xc3\n\xa9", b'\\"', b'\xff"\xff"',
]


@pytest.mark.parametrize("cell", NASTY_CELLS, ids=repr)
def test_each_nasty_cell_is_written_as_csv_writer_wrote_it(tmp_path: Path, cell: bytes | None) -> None:
    header = ["a", "b", "c"]
    checked = [(2, "invalid float in column 'a'", cell, [cell, b"1", cell]),
               (3, 'why, "this"', None, [None, cell, None])]
    reference = ReferenceWriter(header)
    reference.block("in.csv", checked, [])

    write_fast(tmp_path / "rejects.csv", header, "in.csv", checked, [])

    assert (tmp_path / "rejects.csv").read_bytes() == reference.bytes()


def test_all_nasty_cells_in_one_block(tmp_path: Path) -> None:
    header = [f"c{i}" for i in range(5)]
    checked = [(line, f"reason {line % 3}, maybe", NASTY_CELLS[(line + 7) % len(NASTY_CELLS)],
                [NASTY_CELLS[(line * 5 + i) % len(NASTY_CELLS)] for i in range(5)]) for line in range(2, 200, 2)]
    unsplit = [(5, "ragged row: 2 cells where the header has 5", 'x,"y, z"'), (201, "ragged", '"a\r\nb",c\xff')]
    reference = ReferenceWriter(header)
    reference.block("dir, \"odd\"/in.csv", checked, unsplit)

    write_fast(tmp_path / "rejects.csv", header, "dir, \"odd\"/in.csv", checked, unsplit, pad=3)

    assert (tmp_path / "rejects.csv").read_bytes() == reference.bytes()


# ---------------------------------------------------------------- random blocks

PIECES = [b",", b'"', b"\r", b"\n", b"\r\n", b" ", b"a", b"Z", b"\xff", b"\xc3\xa9", b"\xe2\x82", b"\x00", b"\t", b"\\"]
CELLS = st.none() | st.lists(st.sampled_from(PIECES), max_size=6).map(b"".join) | st.binary(max_size=8)
TEXTS = (st.lists(st.sampled_from([",", '"', "\r", "\n", " ", "a", "é", "漢", "'"]), max_size=6).map("".join)
         | st.text(max_size=8))
FILE_NAMES = st.lists(st.sampled_from([",", '"', " ", "a", "é", "\udcff", "\udc80", "/", "\n"]),
                      min_size=1, max_size=6).map("".join)
RAW_ROWS = st.lists(st.sampled_from([",", ";", '"', "a", "\n", "\r", "\r\n", " ", "é", "\udcfe", "\0"]),
                    max_size=10).map("".join)


@st.composite
def blocks(draw):
    width = draw(st.integers(1, 4))
    lines = sorted(draw(st.sets(st.integers(2, 60), max_size=12)))
    checked = [(line, draw(TEXTS), draw(CELLS), draw(st.lists(CELLS, min_size=width, max_size=width)))
               for line in lines]
    # Lines of unsplit rows may even equal a checked row's: the checked row comes first.
    unsplit = draw(st.lists(st.tuples(st.integers(2, 61), TEXTS, RAW_ROWS), max_size=4))
    return [f"h{i}" for i in range(width)], checked, unsplit


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(block=blocks(), file=FILE_NAMES, pad=st.integers(0, 2), delimiter=st.sampled_from([",", ";"]))
def test_random_blocks_are_written_as_csv_writer_wrote_them(tmp_path: Path, block, file: str, pad: int,
                                                            delimiter: str) -> None:
    header, checked, unsplit = block
    reference = ReferenceWriter(header)
    reference.block(file, checked, unsplit, delimiter)

    write_fast(tmp_path / "rejects.csv", header, file, checked, unsplit, pad=pad, delimiter=delimiter)

    assert (tmp_path / "rejects.csv").read_bytes() == reference.bytes()


def test_an_unsplit_row_past_the_field_size_limit_fails_as_it_did(tmp_path: Path) -> None:
    text = "a," + "x" * (csv.field_size_limit() + 1)
    with pytest.raises(csv.Error, match="field larger than field limit"):
        ReferenceWriter(["h"]).block("in.csv", [], [(2, "ragged", text)])

    with pytest.raises(csv.Error, match="field larger than field limit"):
        write_fast(tmp_path / "rejects.csv", ["h"], "in.csv", [], [(2, "ragged", text)])


# ---------------------------------------------------------------- the writer's files


def test_files_are_created_at_the_first_reject_one_per_header(tmp_path: Path) -> None:
    writer = RejectsWriter(tmp_path / "rejects.csv")
    assert writer.paths == [] and not (tmp_path / "rejects.csv").exists()

    one = [pa.array([b"v"], pa.binary())]
    writer.write_rows(["a"], "x.csv", np.array([2]), ["r"], [None], one)
    writer.write_rows(["b"], "y.csv", np.array([], dtype=np.int64), [], [], [], unsplit=[(3, "ragged", "1,2")])
    writer.write_rows(["a"], "z.csv", np.array([4]), ["r"], [b"v"], one)
    writer.close()

    assert writer.paths == [str(tmp_path / "rejects.csv"), str(tmp_path / "rejects.2.csv")]
    assert (tmp_path / "rejects.csv").read_bytes() == b"file,line,reason,value,a\nx.csv,2,r,,v\nz.csv,4,r,v,v\n"
    assert (tmp_path / "rejects.2.csv").read_bytes() == b"file,line,reason,value,b\ny.csv,3,ragged,,1,2\n"


@pytest.mark.parametrize("pending_rows", [1, 3, 4096])
def test_blocks_held_back_and_written_together_keep_their_order(tmp_path: Path, monkeypatch, pending_rows) -> None:
    # The writer holds rows back until PENDING_ROWS have come: flushed every block, now and
    # then, or only at close(), the file is the same, one block after the other.
    monkeypatch.setattr(rejects_module, "PENDING_ROWS", pending_rows)
    header = ["a", "b"]
    reference = ReferenceWriter(header)
    writer = RejectsWriter(tmp_path / "rejects.csv")
    for block in range(6):
        first = 10 * block
        checked = [(first + 1, "bad a", b"x", [b"x", b"1"]), (first + 4, "bad b", None, [b"2", b'"q"'])][: block % 3]
        unsplit = [(first + 2, "ragged", "1,2,3")] if block % 2 else []
        reference.block("in.csv", checked, unsplit)
        columns = [pa.array([cells[i] for *_, cells in checked], pa.binary()) for i in range(2)]
        writer.write_rows(header, "in.csv", np.array([c[0] for c in checked], dtype=np.int64),
                          [c[1] for c in checked], [c[2] for c in checked], columns, unsplit=unsplit)
    writer.close()
    assert (tmp_path / "rejects.csv").read_bytes() == reference.bytes()


# ---------------------------------------------------------------- through convert()

MAPPING = MappingSpec(measurement="m", tags=(TagSpec("id"),), fields=(FieldSpec("value", type=FieldType.FLOAT),),
                      other_columns=OtherColumns.IGNORE, time=TimeSpec(column="time", format="epoch_s"))


def _reference_save(block: pipeline.EncodedBlock, reference: ReferenceWriter) -> None:
    """What save_rejects handed the per-row writer."""
    bad = block.bad_rows
    checked = []
    if bad.size:
        columns = [column.take(pa.array(bad)).to_pylist() for column in block.batch.columns]
        reasons, values = block.encoded.errors.reason_at(bad), block.encoded.errors.value_at(bad)
        checked = [(int(block.lines_of_rows[row]), reasons[i], values[i], [column[i] for column in columns])
                   for i, row in enumerate(bad)]
    unsplit = [(row.line, rowerrors.ragged_row(row.expected, row.actual).text, row.text) for row in block.block.invalid]
    reference.block(block.source.name, checked, unsplit, block.source.delimiter)


def test_convert_writes_the_rejects_file_csv_writer_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [b"id,value,note,time\n"]
    notes = [b"", b'"a, b"', b'"say ""hi"""', b'"two\r\nlines"', b"caf\xc3\xa9", b"\xff\xfe", b" spaced ", b'"\n"']
    for i in range(3000):
        note = notes[i % len(notes)]
        if i % 7 == 0:
            rows.append(b"r%d,%s,%s,1600000000\n" % (i, [b"warm", b'"1,5"', b"\xff", b'""""'][i % 4], note))
        elif i % 31 == 0:
            rows.append(b"r%d,1.5,%s\n" % (i, note))  # ragged
        else:
            rows.append(b"r%d,%d.5,%s,1600000000\n" % (i, i, note))
    (tmp_path / "in, \"x\".csv").write_bytes(b"".join(rows))
    reference = ReferenceWriter(["id", "value", "note", "time"])
    save = pipeline.EncodedBlock.save_rejects

    def both(block: pipeline.EncodedBlock, rejects: RejectsWriter) -> None:
        _reference_save(block, reference)
        save(block, rejects)

    monkeypatch.setattr(pipeline.EncodedBlock, "save_rejects", both)
    sink = open_output(str(tmp_path / "out.lp"))
    try:
        summary = convert([str(tmp_path / "in, \"x\".csv")], mapping=MAPPING, sink=sink,
                          options=ConvertOptions(rejects_path=str(tmp_path / "rejects.csv"), block_size=16384))
    finally:
        sink.close()

    assert summary.rows_rejected > 400
    assert (tmp_path / "rejects.csv").read_bytes() == reference.bytes()
