"""A row longer than the reader's blocks: one rejected row, and the rows after it go on.

Arrow's reader fails the whole input ("straddling object") when a row does not end within the
block after the one it starts in: a 50 MB cell, a line with no break, an unbalanced quote that
runs to the end. Arrow's serial reader makes batch k of read k, and readahead.py keeps the
pieces each read handed out, so the row's start is found in the piece of the last batch taken
(after the line breaks of the rows before it), and `skip_row` reads past it, counting and
dropping its bytes as they go: memory stays at a block or two however long the row runs. The
reader then starts a new Arrow reader on the bytes after it (source.py, `CsvSource.blocks`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .header import size_text


HEAD_KEPT = 1 << 10  # bytes of a row too long for a block kept for the rejects file


@dataclass(frozen=True)
class LongRow:
    """A row read past (`skip_row`): what is kept of it, and where the input goes on."""

    head: bytes  # its first HEAD_KEPT bytes
    size: int  # its bytes, its line break included
    line_breaks: int  # "\n" in it, the one that ends it included
    lines: int  # the physical lines it takes (a last line without "\n" counts too)
    rest: bytes  # bytes read past its end
    ended: bool  # False: the input ends inside it
    quoted_lines: bool  # a quoted value in it holds a line break


_FIELD_START, _IN_FIELD, _QUOTED, _QUOTE_IN_QUOTED = range(4)


def skip_row(first: bytes, more, delimiter: str) -> LongRow:
    """Read past one CSV record that starts at `first[0]`, taking more bytes from `more()` (b"" at
    the end), in the way Arrow's parser ends records (double quotes, quotes only at a cell's
    start, "\\n", "\\r\\n" or "\\r" ends a record outside quotes). Memory stays at a piece or two:
    the record's bytes are counted and dropped as they go, however long it runs.

    Python works per cell boundary and quote, with bytes.find jumping between them: a runaway
    quote that never closes costs one find per piece."""
    sep = delimiter.encode("utf-8")
    data, pos, state = first, 0, _FIELD_START
    size = breaks = 0
    head = b""
    last = b""  # the last byte taken
    quoted_lines = False
    found_in, next_at = None, {}  # the piece searched, and where in it each end comes next
    while True:
        if pos >= len(data):
            size += len(data)
            head = (head + data)[:HEAD_KEPT] if len(head) < HEAD_KEPT else head
            last = data[-1:] or last
            data, pos = more(), 0
            if not data:
                return LongRow(head, size, breaks, breaks + (last != b"\n"), b"", False, quoted_lines)
        if state == _QUOTED:
            quote = data.find(b'"', pos)
            stop = len(data) if quote < 0 else quote
            inside = data.count(b"\n", pos, stop)
            breaks += inside
            quoted_lines |= inside > 0
            pos, state = (len(data), _QUOTED) if quote < 0 else (quote + 1, _QUOTE_IN_QUOTED)
            continue
        byte = data[pos:pos + 1]
        if state == _QUOTE_IN_QUOTED and byte == b'"':
            pos, state = pos + 1, _QUOTED  # a doubled quote inside the quoted cell
            continue
        if state == _FIELD_START and byte == b'"':
            pos, state = pos + 1, _QUOTED
            continue
        # In a cell (or just after its closing quote): on to the next delimiter or line end. Where
        # each of the three comes next is kept per piece, so that a piece is searched once per byte.
        if found_in is not data:
            found_in, next_at = data, {}
        for char in (sep, b"\n", b"\r"):
            at = next_at.get(char, -2)
            if -1 < at < pos or at == -2:
                next_at[char] = data.find(char, pos)
        ends = [at for at in next_at.values() if at >= 0]
        if not ends:
            pos, state = len(data), _IN_FIELD
            continue
        pos = min(ends)
        if data.startswith(sep, pos):
            pos, state = pos + len(sep), _FIELD_START
            continue
        end = pos + 1
        if data[pos:end] == b"\r":  # "\r\n" is one line end: look for its "\n", in the next piece too
            if end == len(data):
                size += len(data)
                head = (head + data)[:HEAD_KEPT] if len(head) < HEAD_KEPT else head
                data, pos, end = more(), 0, 0
            if data[end:end + 1] == b"\n":
                end += 1
        found = data.count(b"\n", pos, end)
        breaks += found
        size += end
        head = (head + data[:end])[:HEAD_KEPT] if len(head) < HEAD_KEPT else head
        return LongRow(head, size, breaks, breaks + (not found), data[end:], True, quoted_lines)


@dataclass(frozen=True)
class TooLong:
    """A row longer than the reader's blocks: read past, never held whole (quotes.skip_row)."""

    size: int  # its bytes
    lines: int
    quoted_lines: bool  # a quoted value in it holds line breaks
    ended: bool  # False: it runs to the end of the input
    block_size: int


def is_too_long(exc: Exception) -> bool:
    """Arrow's error for a row that does not end within the block after the one it starts in."""
    return "straddling" in str(exc)


def after_line_breaks(data: bytes, count: int) -> int | None:
    """The position after the `count`-th line break of `data` (0 for none), None when it has fewer."""
    if count == 0:
        return 0
    breaks = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    return int(breaks[count - 1]) + 1 if len(breaks) >= count else None


def first_record_is_one_line(starts: list[int], end_line: int) -> bool:
    """Whether a block's first record (good or not) takes one line: its next record, or the block's
    end (`end_line`), is on the next line. `starts`: the lines its first records start on (good
    and invalid ones, two of each at most). An empty block (a read inside one record) counts as one."""
    starts = sorted(starts)
    if not starts:
        return True
    following = starts[1] if len(starts) > 1 else end_line
    return following - starts[0] == 1


def find_long_row(limit, taken: int, piece_line: int | None, row_line: int, read_more: Callable[[], bytes],
                  delimiter: str) -> LongRow | None:
    """Arrow stopped at a row that does not end within the block after the one it starts in (the
    row on `row_line`): find where it starts and read past it (`skip_row`, on the pieces `limit`,
    a ReadAheadLimit, kept, then on `read_more()`), or None when that cannot be told for sure.

    The row starts in the piece of the last batch taken (`taken`; the first piece when there is
    none), after the line breaks of the lines before `row_line` in it: `piece_line` is the line
    that piece starts on. That is known when the batch's first record is one line (it may have
    begun in the piece before); when it is not, or what is found does not fit Arrow's failure
    (the row must run past the next piece), the caller fails the input as before."""
    limit.end(wait=math.inf, for_reads_only=True)  # Arrow's read in progress lands in the pieces
    pieces = limit.pieces
    number = max(taken, 1)
    piece = pieces.get(number)
    if piece_line is None or piece is None or row_line < piece_line:
        return None
    offset = after_line_breaks(piece, row_line - piece_line)
    if offset is None:
        return None
    queued = [pieces[n] for n in sorted(pieces) if n > number]
    fits_in = len(piece) - offset + (len(queued[0]) if queued else 0)

    def more() -> bytes:
        return queued.pop(0) if queued else read_more()

    row = skip_row(piece[offset:], more, delimiter)
    if row.ended and row.size <= fits_in:
        return None  # not the row Arrow could not place: do not guess
    return replace(row, rest=row.rest + b"".join(queued)) if queued else row


def unplaceable_row(name: str, line: int, block_size: int) -> str:
    """The message when a row is too long for a block and where it starts cannot be told."""
    return (f"{name}: near line {line}: a row does not end within {size_text(block_size)} (the block size) and "
            f"where it starts cannot be told for sure (a row with quoted line breaks just before it), so the "
            f"rest of the file could not be read. Fix the row (most likely an unbalanced quote), or raise "
            f"--block-size (execd: block_size in [convert] of csv2lp.toml) if a row really is that long.")
