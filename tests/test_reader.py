"""converter.read.source: raw cells and the physical line of every row, checked against Python's csv module.

The reference reads the same bytes with `csv.reader` row by row and notes the line each
record starts on; the reader must give the same lines and cells, whether the rows are
good or ragged, across block boundaries, in every supported compression and line ending.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import random
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from converter.read import streams
from converter.errors import InputError
from converter.read.inputs import expand_inputs, open_source

SMALL_BLOCK = 65536  # the smallest --block-size: many blocks from a few hundred KiB


def reference(data: bytes, delimiter: str = ",") -> list[tuple[int, list[str]]]:
    """(first line, cells) of each record after the header, by Python's csv module; blank lines left out."""
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    next(reader)
    records, line = [], reader.line_num + 1
    for row in reader:
        if row:
            records.append((line, row))
        line = reader.line_num + 1
    return records


def read_all(path: Path | str, *, delimiter: str = ",", block_size: int = SMALL_BLOCK,
             stdin: io.BytesIO | None = None) -> tuple[tuple[str, ...], list[tuple[int, list[str]]]]:
    """The header, then (line, cells) of every row the reader gives, good and ragged, in line order."""
    source = open_source(str(path), delimiter=delimiter, block_size=block_size, stdin=stdin)
    records: list[tuple[int, list[str]]] = []
    try:
        for block in source.blocks():
            columns = [[_text(c) for c in column.to_pylist()] for column in block.cells.columns]
            for i, line in enumerate(block.row_lines()):
                cells = [column[i] for column in columns]
                if any(cells):  # blank lines are all-empty rows; the pipeline counts them apart
                    records.append((int(line), cells))
            for row in block.invalid:
                records.append((row.line, next(csv.reader(io.StringIO(row.text, newline=""), delimiter=delimiter))))
    finally:
        source.close()
    return source.header, sorted(records, key=lambda r: r[0])


def _text(cell: bytes | None) -> str:
    return "" if cell is None else cell.decode("utf-8", errors="surrogateescape")


def generated_csv(seed: int, rows: int, newline: str) -> bytes:
    """Good rows, quoted commas/quotes/line breaks, ragged rows (some spanning lines), blank lines,
    non-ASCII text and bytes that are not UTF-8, in random order."""
    rnd = random.Random(seed)
    out = [f"id,text,value{newline}".encode()]
    for i in range(rows):
        kind = rnd.random()
        filler = "x" * rnd.randint(0, 120)
        if kind < 0.05:
            out.append(f"{i},short{newline}".encode())
        elif kind < 0.08:
            out.append(f"{i},too,many,cells{newline}".encode())
        elif kind < 0.10:
            out.append(f'{i},"ragged{newline}across lines"{newline}'.encode())
        elif kind < 0.20:
            body = newline.join(filler[: rnd.randint(0, 30)] for _ in range(rnd.randint(2, 4)))
            out.append(f'{i},"{body}, ""quoted""",{i}{newline}'.encode())
        elif kind < 0.23:
            out.append(newline.encode())
        elif kind < 0.26:
            out.append(f"{i},Galápagos {filler},{i}{newline}".encode())
        elif kind < 0.28:
            out.append(f"{i},bad ".encode() + b"\xff\xfe" + f",{i}{newline}".encode())
        elif kind < 0.29:
            out.append(f"{i},ragged and bad ".encode() + b"\xe9" + newline.encode())
        else:
            out.append(f"{i},{filler},{i}{newline}".encode())
    return b"".join(out)


# ---------------------------------------------------------------- line numbers


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_line_numbers_count_the_line_breaks_inside_quoted_cells(tmp_path: Path, newline: str) -> None:
    text = textwrap.dedent("""
        id,text,value
        1,"two
        lines",1
        2,plain,2
        3,"three
        whole
        lines",3
        4,short
        5,plain,5
        """).lstrip("\n").replace("\n", newline)
    (tmp_path / "in.csv").write_bytes(text.encode())

    header, records = read_all(tmp_path / "in.csv")

    assert header == ("id", "text", "value")
    assert records == [
        (2, ["1", f"two{newline}lines", "1"]),
        (4, ["2", "plain", "2"]),
        (5, ["3", f"three{newline}whole{newline}lines", "3"]),
        (8, ["4", "short"]),
        (9, ["5", "plain", "5"]),
    ]


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_good_and_ragged_rows_across_block_boundaries_match_the_csv_module(tmp_path: Path, seed: int,
                                                                           newline: str) -> None:
    data = generated_csv(seed, 6000, newline)
    assert len(data) > 4 * SMALL_BLOCK  # several blocks, so rows straddle their boundaries
    (tmp_path / "in.csv").write_bytes(data)

    _, records = read_all(tmp_path / "in.csv")

    assert records == reference(data)


def test_ragged_rows_that_are_not_utf8_keep_their_bytes(tmp_path: Path) -> None:
    # Regression: pyarrow decodes a ragged row's text as strict UTF-8 before its handler runs.
    data = b"id,text,value\n1,caf\xe9,1\n2,caf\xe9\n3,\xc3\xa9,3\n"
    (tmp_path / "in.csv").write_bytes(data)

    source = open_source(str(tmp_path / "in.csv"))
    blocks = list(source.blocks())

    assert [c for b in blocks for c in b.cells.column(1).to_pylist()] == [b"caf\xe9", "é".encode()]
    assert [(r.line, r.text.encode("utf-8", "surrogateescape")) for b in blocks for r in b.invalid] == [
        (3, b"2,caf\xe9"),
    ]


def test_blank_lines_are_all_empty_rows_with_their_own_line_numbers(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(b"a,b\n\n1,2\n\n\n3,4\n")

    source = open_source(str(tmp_path / "in.csv"))
    (block,) = list(source.blocks())

    assert block.cells.column(0).to_pylist() == [None, b"1", None, None, b"3"]
    assert block.row_lines().tolist() == [2, 3, 4, 5, 6]


# ---------------------------------------------------------------- compression, BOM, stdin


ROWS = textwrap.dedent("""
    station,note,time
    north,"cold, windy",2020-01-01T00:00:00Z
    south,"said ""hi""
    twice",2020-01-01T00:00:01Z
    """).lstrip("\n").encode()
ROWS_EXPECTED = [
    (2, ["north", "cold, windy", "2020-01-01T00:00:00Z"]),
    (3, ["south", 'said "hi"\ntwice', "2020-01-01T00:00:01Z"]),
]


def zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return sink.getvalue().to_pybytes()


def test_the_row_a_damage_cuts_comes_after_ragged_rows_before_it(tmp_path: Path, monkeypatch) -> None:
    """The last rows read before the damage are ragged: each keeps its own line, the cut row the last."""
    monkeypatch.setattr(streams, "DECOMPRESSED_PIECE", 8)  # the failing read loses 8 bytes at most
    text = "a,b\n" + "".join(f"s{i},{i}.5\n" for i in range(50)) + "bad\nother,bad,x\n" + "s9,9.5\n" * 3
    (tmp_path / "in.csv.gz").write_bytes(gzip.compress(text.encode(), mtime=0)[:-12])
    invalid = []
    with pytest.raises(InputError, match="past line 53: .* line 53 is cut off"):
        for block in open_source(str(tmp_path / "in.csv.gz")).blocks():
            invalid += block.invalid
    assert [(row.line, row.cut_off, row.text) for row in invalid] == [(52, False, "bad"), (53, True, "other,bad,")]


@pytest.mark.parametrize(
    "name, compress",
    [
        ("in.csv", lambda b: b),
        ("in.csv.gz", gzip.compress),
        ("in.csv.bz2", bz2.compress),
        ("in.csv.zst", zstd),
        ("IN.CSV.GZ", gzip.compress),
    ],
    ids=["plain", "gzip", "bz2", "zstd", "upper-case suffix"],
)
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["no BOM", "BOM"])
def test_compressed_inputs_by_extension(tmp_path: Path, name: str, compress, bom: bytes) -> None:
    (tmp_path / name).write_bytes(compress(bom + ROWS))

    header, records = read_all(tmp_path / name)

    assert header == ("station", "note", "time")  # no BOM glued to the first name
    assert records == ROWS_EXPECTED


@pytest.mark.parametrize("compress", [lambda b: b, gzip.compress], ids=["plain", "gzip"])
def test_stdin_plain_or_gzip_by_its_magic_bytes(compress) -> None:
    header, records = read_all("-", stdin=io.BytesIO(compress(b"\xef\xbb\xbf" + ROWS)))

    assert header == ("station", "note", "time")
    assert records == ROWS_EXPECTED


def test_large_compressed_input_matches_the_csv_module(tmp_path: Path) -> None:
    data = generated_csv(7, 3000, "\n")
    (tmp_path / "in.csv.zst").write_bytes(zstd(data))

    _, records = read_all(tmp_path / "in.csv.zst")

    assert records == reference(data)


# ---------------------------------------------------------------- header and delimiter


@pytest.mark.parametrize("delimiter", [";", "\t", "|"], ids=["semicolon", "tab", "pipe"])
def test_delimiters(tmp_path: Path, delimiter: str) -> None:
    data = ROWS.decode().replace(",", delimiter).replace(f"cold{delimiter} windy", "cold, windy").encode()
    (tmp_path / "in.csv").write_bytes(data)

    header, records = read_all(tmp_path / "in.csv", delimiter=delimiter)

    assert header == ("station", "note", "time")
    assert records == ROWS_EXPECTED


def test_quoted_header_names_with_commas_and_line_breaks(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(b'"a,b","two\nlines",c\n1,2,3\n')

    header, records = read_all(tmp_path / "in.csv")

    assert header == ("a,b", "two\nlines", "c")
    assert records == [(3, ["1", "2", "3"])]


def test_header_longer_than_the_first_read(tmp_path: Path) -> None:
    names = [f"column_{i:05d}" for i in range(8000)]  # about 100 KiB of header
    (tmp_path / "in.csv").write_bytes((",".join(names) + "\n" + ",".join("1" * 8000) + "\n").encode())

    source = open_source(str(tmp_path / "in.csv"), block_size=1 << 20)

    assert source.header == tuple(names)
    assert source.header_lines == 1


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "in.csv: the file is empty; a CSV file with a header line is expected."),
        (b"\xef\xbb\xbf\n", "in.csv: the file is empty; a CSV file with a header line is expected."),
        (b"a,b\xff\n1,2\n",
         "in.csv: the header is not valid UTF-8 (column 2: b'b\\xff'); re-export the file as UTF-8."),
        ("a,b\n".encode("utf-16-le"), "in.csv: the header line holds NUL bytes: this is not UTF-8 CSV text "
                                      "(a binary file, or UTF-16 text?). Re-export it as UTF-8, e.g. iconv -f "
                                      "UTF-16 -t UTF-8."),
        (zstd(b"a,b\n1,2\n"), "in.csv: the file is compressed (.zst) but its name does not end in .zst; rename "
                              "it so that csv2lp decompresses it."),
    ],
    ids=["empty", "only BOM", "header not UTF-8", "UTF-16", "zstd without suffix"],
)
def test_inputs_without_a_usable_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes,
                                        message: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("in.csv").write_bytes(data)

    with pytest.raises(InputError) as error:
        open_source("in.csv")

    assert str(error.value) == message


# ---------------------------------------------------------------- globs


def test_globs_expand_sorted_within_a_pattern_in_the_order_given(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("b.csv", "a.csv", "c.csv.gz", "sub/d.csv"):
        Path(name).parent.mkdir(exist_ok=True)
        Path(name).write_bytes(b"")

    assert expand_inputs(["c.csv.gz", "*.csv", "-", "**/*.csv"]) == [
        "c.csv.gz", "a.csv", "b.csv", "-", "a.csv", "b.csv", "sub/d.csv",
    ]


def test_a_glob_that_matches_nothing_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    with pytest.raises(InputError, match=r"^\*\.tsv: the pattern matches no file\.$"):
        expand_inputs(["*.tsv"])


def test_stream_wrappers_hand_on_bytes_by_read_and_readinto():
    import io as _io

    from converter.read.streams import CountingReader, PrefixedReader

    counter = CountingReader(_io.BytesIO(b"0123456789"))
    stream = PrefixedReader(b"ab", counter)
    assert stream.read(1) == b"a"
    assert stream.read(5) == b"b"  # the rest of the prefix first, never mixed with the stream
    assert stream.read(3) == b"012"
    into = bytearray(4)
    assert stream.readinto(into) == 4 and bytes(into) == b"3456"
    assert stream.read(-1) == b"789"
    assert stream.read(4) == b""
    assert counter.count == 10  # bytes taken from the file, the prefix not counted


def test_the_utf8_guard_hands_arrow_whole_blocks_from_short_reads():
    import io as _io

    from converter.read.utf8guard import Utf8Guard

    class Trickle(_io.RawIOBase):  # a pipe: at most 3 bytes a read
        def __init__(self, data: bytes) -> None:
            self._data = _io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            return self._data.read(min(3, size) if size and size > 0 else 3)

    text = "a,é\n1,漢字\n".encode() * 4  # multi-byte characters cut by the 3-byte reads
    guard = Utf8Guard(Trickle(text))
    assert not guard.at_end()
    blocks = list(iter(lambda: guard.read(10), b""))
    assert [len(b) for b in blocks[:-1]] == [10] * (len(blocks) - 1)  # whole blocks but the last
    assert b"".join(blocks) == text and not guard.swapped
    assert guard.at_end()

    bad = Utf8Guard(Trickle(b"x,\xff\n" * 3))
    out = bad.read(-1)
    assert bad.swapped and out.count("\U0010ffff".encode()) == 3  # 0xff travels as its stand-in
