"""The header record of a plain CSV: read from the first bytes, parsed with Python's csv module,
and refused early, with a reason, when it shows the file is not CSV text."""

from __future__ import annotations

import csv
import io
from typing import Callable, NoReturn, TypeVar

from ..errors import InputError
from .streams import GZIP_MAGIC

T = TypeVar("T")


class HeaderTooLong(Exception):
    """`read_until_parsed` read `limit` bytes without `parse` giving anything; `prefix` holds them."""

    def __init__(self, prefix: bytes) -> None:
        super().__init__(f"nothing parsed in {len(prefix):,} bytes")
        self.prefix = prefix


def read_until_parsed(stream, parse: Callable[[bytes, bool], T | None], *,
                      limit: int) -> tuple[bytes, T | None, bool]:
    """Read more and more of `stream` (64 KiB, then twice as much each time, `limit` bytes at most)
    until `parse(bytes so far, at end of input)` gives something or the input ends; the bytes read,
    what it gave, and whether the input ended. Past `limit` bytes, HeaderTooLong: a file whose
    first line never ends (200 MB without a line break, a gzip bomb of NUL bytes) is refused at a
    memory of `limit`, not read whole."""
    prefix = b""
    size = min(64 << 10, limit)
    while True:
        chunk = stream.read(size)
        prefix += chunk or b""
        at_eof = not chunk
        parsed = parse(prefix, at_eof)
        if parsed is not None or at_eof:
            return prefix, parsed, at_eof
        if len(prefix) >= limit:
            raise HeaderTooLong(prefix)
        size = min(size * 2, limit - len(prefix))


def read_header(name: str, stream, delimiter: str, *, limit: int) -> tuple[bytes, tuple[str, ...], int, bool]:
    """Take enough bytes to hold the header record (`limit` at most: the block size), parse it, and
    hand the bytes back, with whether they are the whole input."""
    try:
        prefix, complete, at_eof = read_until_parsed(
            stream, lambda taken, at_eof: parse_header(taken, delimiter, at_eof), limit=limit)
    except HeaderTooLong as exc:
        refuse_long_header(name, exc.prefix, limit)
    if complete is None or not prefix.strip(b"\xef\xbb\xbf\r\n"):
        raise InputError(f"{name}: the file is empty; a CSV file with a header line is expected.")
    header, lines = complete
    check_header_text(name, prefix, header)
    return prefix, header, lines, at_eof and _nothing_after(prefix, delimiter)


def refuse_long_header(name: str, prefix: bytes, limit: int) -> NoReturn:
    """The header does not end within `limit` bytes: refused as binary if it looks so, else as too long."""
    check_header_text(name, prefix, (prefix[:4096].decode("utf-8", errors="surrogateescape"),))
    if prefix.count(b"\n") == 0:
        what = "has no line break"
    else:
        what = "holds a quote that opens a value which does not end there"
    raise InputError(f"{name}: the header does not end within the first {size_text(limit)} (the block size): the "
                     f"file {what}. A CSV file starts with a header line; if the header really is longer, raise "
                     f"--block-size (execd: block_size in [convert]).")


def size_text(size: int) -> str:
    """2 MiB, 64 KiB, 1,000 bytes: a size as the options give it."""
    if size >= 1 << 20 and size % (1 << 20) == 0:
        return f"{size >> 20} MiB"
    if size >= 1 << 10 and size % (1 << 10) == 0:
        return f"{size >> 10} KiB"
    return f"{size:,} bytes"


COMPRESSION_MAGIC = {GZIP_MAGIC: ".gz", b"BZh": ".bz2", b"\x28\xb5\x2f\xfd": ".zst"}


def check_header_text(name: str, prefix: bytes, header: tuple[str, ...]) -> None:
    """Refuse, with the reason, inputs that are not UTF-8 CSV text (binary, UTF-16, compressed)."""
    for magic, suffix in COMPRESSION_MAGIC.items():
        if prefix.startswith(magic) and any("\x00" in cell or _undecodable(cell) for cell in header):
            raise InputError(f"{name}: the file is compressed ({suffix}) but its name does not end in {suffix}; "
                             f"rename it so that csv2lp decompresses it.")
    if prefix.startswith((b"\xff\xfe", b"\xfe\xff")) or any("\x00" in cell for cell in header):
        raise InputError(f"{name}: the header line holds NUL bytes: this is not UTF-8 CSV text (a binary file, "
                         f"or UTF-16 text?). Re-export it as UTF-8, e.g. iconv -f UTF-16 -t UTF-8.")
    for number, cell in enumerate(header, start=1):
        if _undecodable(cell):
            shown = cell.encode("utf-8", errors="surrogateescape")
            raise InputError(f"{name}: the header is not valid UTF-8 (column {number}: {shown!r}); "
                             f"re-export the file as UTF-8.")


def _undecodable(cell: str) -> bool:
    """True for a cell decoded with surrogateescape from bytes that are not UTF-8."""
    return any("\udc80" <= char <= "\udcff" for char in cell)


def _nothing_after(prefix: bytes, delimiter: str) -> bool:
    """True when `prefix`, the whole input, is its header record and nothing else (blank lines aside)."""
    text = prefix.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")
    try:
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        next(rows, None)
        return all(not row for row in rows)
    except csv.Error:
        return False


def parse_header(prefix: bytes, delimiter: str, at_eof: bool) -> tuple[tuple[str, ...], int] | None:
    if prefix.startswith(b"\xef\xbb\xbf"):
        prefix = prefix[3:]
    if not at_eof:
        cut = prefix.rfind(b"\n")
        if cut < 0:
            return None
        prefix = prefix[: cut + 1]
    # surrogateescape keeps undecodable bytes recognisable, so they are refused by name, not guessed at.
    text = prefix.decode("utf-8", errors="surrogateescape")
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(rows)
    except StopIteration:
        return None
    except csv.Error:
        return None
    consumed = rows.line_num
    if not at_eof and consumed >= text.count("\n") and not text.endswith("\n"):
        return None
    return tuple(header), consumed
