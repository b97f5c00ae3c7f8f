"""The header record of a plain CSV: read from the first bytes, parsed with Python's csv module,
and refused early, with a reason, when it shows the file is not CSV text."""

from __future__ import annotations

import csv
import io
from typing import Callable, TypeVar

from ..errors import InputError
from .streams import GZIP_MAGIC

T = TypeVar("T")


def read_until_parsed(stream, parse: Callable[[bytes, bool], T | None]) -> tuple[bytes, T | None]:
    """Read more and more of `stream` (64 KiB, then twice as much each time) until `parse(bytes so
    far, at end of input)` gives something or the input ends; the bytes read and what it gave."""
    prefix = b""
    size = 64 << 10
    while True:
        chunk = stream.read(size)
        prefix += chunk or b""
        at_eof = not chunk
        parsed = parse(prefix, at_eof)
        if parsed is not None or at_eof:
            return prefix, parsed
        size *= 2


def read_header(name: str, stream, delimiter: str) -> tuple[bytes, tuple[str, ...], int]:
    """Take enough bytes to hold the header record, parse it, and hand the bytes back."""
    prefix, complete = read_until_parsed(stream, lambda taken, at_eof: parse_header(taken, delimiter, at_eof))
    if complete is None or not prefix.strip(b"\xef\xbb\xbf\r\n"):
        raise InputError(f"{name}: the file is empty; a CSV file with a header line is expected.")
    header, lines = complete
    check_header_text(name, prefix, header)
    return prefix, header, lines


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
