"""Files whose header is not simply their first line: Telegraf's CSV parser options (see
telegraf_csv.py) as byte-level line filters before Arrow and column clean-ups after it."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from .header import HeaderTooLong, check_header_text, read_until_parsed, refuse_long_header, size_text
from ..mapping import FieldType


@dataclass(frozen=True)
class ReadSettings:
    """Where a file's header and data are, and how its cells are cleaned (Telegraf's CSV parser
    options, see telegraf_csv.py). The defaults read a plain CSV: the first record is the header."""

    skip_rows: int = 0  # physical lines dropped first
    metadata_rows: int = 0  # the next physical lines: `key<separator>value` tags for every row
    metadata_separators: tuple[str, ...] = ()  # tried longest first
    metadata_trim_set: str = ""  # characters stripped from both ends of metadata keys and values
    metadata_wins: bool = True  # a metadata key that names a column replaces that column's cells
    comment: str = ""  # lines starting with it are dropped (after the metadata lines)
    header_rows: int = 1  # records that name the columns, their cells joined per column
    column_names: tuple[str, ...] = ()  # given names: header rows are then read and ignored
    skip_columns: int = 0  # cells dropped from the left of every row (and of the header)
    trim_space: bool = False  # spaces and tabs before cells, and spaces after them, are dropped
    skip_values: tuple[str, ...] = ()  # cells equal to one of these are empty
    column_types: tuple[FieldType, ...] = ()  # one type per column, by position

    @property
    def plain(self) -> bool:
        return self == ReadSettings()


PLAIN = ReadSettings()
DELIMITER_RULE = "one ASCII character other than a quote, a line break or NUL (e.g. ',', ';', '|', or 'tab')"


def delimiter_problem(value: str) -> str | None:
    """Why `value` cannot split cells (None when it can). Arrow takes one ASCII byte; a quote or a line
    break would be read as the delimiter nowhere, and every row would be one cell."""
    if len(value) != 1 or value in ('"', "\r", "\n", "\x00") or not value.isascii():
        return f"{value!r} cannot be the delimiter: give {DELIMITER_RULE}"
    return None
BOM = b"\xef\xbb\xbf"
SKIPPED_COLUMN = "\x00skipped column {}"  # Arrow's name for a skipped column: no header has NUL


class CommentFilter(io.RawIOBase):
    """Drops the lines that start with `comment`, and remembers where, to keep line numbers physical.

    The search is for b"\\n" + comment in whole lines, so the work is per comment line, not per
    row. (A line inside a quoted cell that starts with the comment character is dropped too;
    Telegraf's Go reader would keep it. Comment lines inside quoted cells are unheard of.)
    """

    def __init__(self, raw, comment: str, *, limit: int) -> None:
        self._raw = raw
        self._comment = comment.encode("utf-8")
        self._marker = b"\n" + self._comment
        self._limit = limit  # a line longer than this goes out in pieces (the reader rejects its row)
        self._carry = b""  # the start of a line that goes on in the next chunk
        self._out = b""
        self._kept_lines = 0
        self._in_line = False  # the last piece ended inside a line longer than `limit`
        self._dropping = False  # ... and that line is a comment
        self.dropped_before: list[int] = []  # for each dropped line: how many kept lines came before it

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._out:
            chunk = self._raw.read(max(len(buffer), 1 << 16))
            if not chunk:
                data, self._carry = self._carry, b""
                if not data:
                    return 0
            else:
                data = self._carry + chunk
                cut = data.rfind(b"\n") + 1  # whole lines only: a comment marker never straddles chunks
                if cut == 0 and len(data) > self._limit:
                    cut = len(data)  # a line longer than a block: passed on as it comes, never held whole
                data, self._carry = data[:cut], data[cut:]
            self._out = self._filtered(data)
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _filtered(self, data: bytes) -> bytes:
        head = b""
        if self._in_line:  # the rest of a long line: kept or dropped as its start was
            end = data.find(b"\n")
            stop = len(data) if end < 0 else end + 1
            head, data = (b"" if self._dropping else data[:stop]), data[stop:]
            self._kept_lines += head.count(b"\n")
            if end < 0:
                return head
            self._in_line = False
        kept = self._drop_comments(data)
        if data and not data.endswith(b"\n"):
            start = data.rfind(b"\n") + 1
            self._in_line, self._dropping = True, data.startswith(self._comment, start)
        return head + kept

    def _drop_comments(self, data: bytes) -> bytes:
        kept: list[bytes] = []
        pos = 0  # always the start of a line
        while pos < len(data):
            if data.startswith(self._comment, pos):
                end = data.find(b"\n", pos)
                pos = len(data) if end < 0 else end + 1
                self.dropped_before.append(self._kept_lines)
                continue
            found = data.find(self._marker, pos)
            stop = len(data) if found < 0 else found + 1
            self._kept_lines += data.count(b"\n", pos, stop)
            kept.append(data[pos:stop])
            pos = stop
        return b"".join(kept)


def take_lines(name: str, stream, count: int, *, limit: int) -> tuple[list[bytes], bytes]:
    """The first `count` physical lines of `stream` (a leading BOM dropped), and the bytes read past
    them. A line longer than `limit` (the block size) is refused, not read on without end."""
    data = stream.read(64 << 10) or b""
    if data.startswith(BOM):
        data = data[len(BOM):]
    while (found := data.count(b"\n")) < count:
        if len(data) - (data.rfind(b"\n") + 1) > limit:
            raise InputError(f"{name}: line {found + 1:,}, one of the {count} to skip and read as metadata before "
                             f"the header, does not end within {size_text(limit)} (the block size); check "
                             f"skip_rows and metadata_rows, or raise --block-size if the line is that long.")
        chunk = stream.read(64 << 10)
        if not chunk:
            break
        data += chunk
    lines: list[bytes] = []
    pos = 0
    while len(lines) < count and pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        lines.append(data[pos:end])
        pos = end
    if len(lines) < count:
        raise InputError(f"{name}: the file has {len(lines)} lines, fewer than the {count} to skip and read "
                         f"as metadata before the header.")
    return lines, data[pos:]


def read_metadata(name: str, lines: Sequence[bytes], first_line: int, settings: ReadSettings) -> dict[str, str]:
    """`key<separator>value` lines -> tags; lines without a separator, or with an empty key, give none."""
    separators = sorted(dict.fromkeys(settings.metadata_separators), key=len, reverse=True)
    found: dict[str, str] = {}
    for number, raw in enumerate(lines, start=first_line):
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise InputError(f"{name}:{number}: the metadata line is not valid UTF-8; re-export the file as UTF-8.") from None
        for separator in separators:
            key, sep, value = line.partition(separator)
            key = key.strip(settings.metadata_trim_set)
            if sep and key:
                found[key] = value.strip(settings.metadata_trim_set)
                break
    return found


def read_header_rows(name: str, stream, delimiter: str, settings: ReadSettings, *,
                     limit: int) -> tuple[bytes, list[str], int]:
    """Read `settings.header_rows` records (blank lines between them are skipped), join their cells per
    column, and return the bytes after them, the names and the lines they took."""
    try:
        prefix, parsed, _ = read_until_parsed(
            stream, lambda taken, at_eof: parse_header_rows(taken, delimiter, settings, at_eof), limit=limit)
    except HeaderTooLong as exc:
        refuse_long_header(name, exc.prefix, limit)
    if parsed is None:
        raise InputError(f"{name}: the file ends before its {settings.header_rows} header line(s); "
                         f"a CSV file with a header is expected.")
    names, used, lines = parsed
    check_header_text(name, prefix, tuple(names))
    return prefix[used:], names, lines


def parse_header_rows(prefix: bytes, delimiter: str, settings: ReadSettings,
                       at_eof: bool) -> tuple[list[str], int, int] | None:
    text = prefix.decode("utf-8", errors="surrogateescape")
    if not at_eof:
        text = text[: max(text.rfind("\n"), text.rfind("\r")) + 1]  # whole lines only
    taken = 0  # characters of `text` the csv module has read

    def lines():
        nonlocal taken
        for line in io.StringIO(text, newline=""):
            taken += len(line)
            yield line

    rows = csv.reader(lines(), delimiter=delimiter)
    names: list[str] = []
    found = 0
    try:
        while found < settings.header_rows:
            row = next(rows)
            if not row:
                continue  # Go's CSV reader skips blank lines, in the header too
            found += 1
            for i, cell in enumerate(row):
                if settings.trim_space:
                    cell = cell.lstrip().strip(" ")
                if i < len(names):
                    names[i] += cell
                else:
                    names.append(cell)
    except (StopIteration, csv.Error):
        return None
    if not at_eof and taken == len(text):
        return None  # the last record may go on in a quoted cell beyond what was read: read more
    head = text[:taken]
    return names, len(head.encode("utf-8", errors="surrogateescape")), head.count("\n")



def trimmed(column: pa.Array, skip_values: pa.Array | None) -> pa.Array:
    """Spaces and tabs before a cell and spaces after it dropped (what Go's TrimLeadingSpace and
    strings.Trim(value, " ") do in Telegraf); cells left empty, or equal to a skip value once
    trimmed, become null. The ASCII kernels work on bytes, so cells that are not UTF-8 keep theirs."""
    text = pc.ascii_rtrim(pc.ascii_ltrim(column.view(pa.string()), " \t"), " ").view(pa.binary())
    empty = pc.equal(pc.binary_length(text), 0)
    if skip_values is not None:
        empty = pc.or_(empty, pc.is_in(text, value_set=skip_values))
    return pc.if_else(pc.fill_null(empty, False), pa.scalar(None, pa.binary()), text)


def blank_rows(columns: Sequence[pa.Array]) -> pa.Array | None:
    """Rows with no cell at all (None when there is none): metadata stays out of them, so they stay blank."""
    if not columns or min(column.null_count for column in columns) == 0:
        return None
    blank = pc.is_null(columns[0])
    for column in columns[1:]:
        blank = pc.and_(blank, pc.is_null(column))
    return blank


def constant_column(value: str, length: int, blank: pa.Array | None) -> pa.Array:
    if value == "":
        return pa.nulls(length, pa.binary())
    constant = pa.repeat(pa.scalar(value.encode("utf-8"), pa.binary()), length)
    return constant if blank is None else pc.if_else(blank, pa.scalar(None, pa.binary()), constant)
