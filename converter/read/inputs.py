"""Inputs: paths, globs, stdin, FIFOs and /dev/fd, each opened once, decompressed by extension or magic bytes."""

from __future__ import annotations

import glob
import io
import os
import re
import stat
import sys
from pathlib import Path
from typing import BinaryIO, Sequence

import pyarrow as pa

from ..errors import InputError
from .settings import PLAIN, ReadSettings
from .expansion import DEFAULT_MAX_EXPANSION, ExpansionLimit
from .source import DEFAULT_BLOCK_SIZE, DEFAULT_MAX_COLUMNS, CsvSource
from .streams import COMPRESSION_BY_SUFFIX, GZIP_MAGIC, CountingReader, PrefixedReader, StoppedByLimit, decompressing

STDIN = "-"


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """Paths and globs (sorted within each pattern) in the order given; '-' is stdin."""
    expanded: list[str] = []
    for item in inputs:
        if item == STDIN or not glob.has_magic(item):
            expanded.append(item)
            continue
        matches = sorted(glob.glob(item, recursive=True))
        if not matches:
            raise InputError(f"{item}: the pattern matches no file.")
        expanded.extend(matches)
    return expanded


def is_stream(item: str) -> bool:
    """True for inputs that can be read only once: stdin, FIFOs, pipes (`<(zcat x.gz)` is /dev/fd/N),
    sockets and character devices. They are opened once, and their header checked then, as stdin's."""
    if item == STDIN:
        return True
    try:
        mode = os.stat(item).st_mode
    except OSError:
        return False  # opening it says what is wrong
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def is_descriptor_path(item: str) -> bool:
    """True for /dev/fd/N, /proc/PID/fd/N and /dev/stdin: names of an open file, not of the data."""
    if item == "/dev/stdin":
        return True
    folder = os.path.realpath(os.path.dirname(os.path.abspath(item)))
    return re.fullmatch(r"/dev/fd|/proc/(self|\d+)/fd", folder) is not None


def open_source(item: str, *, delimiter: str = ",", block_size: int = DEFAULT_BLOCK_SIZE,
                stdin: BinaryIO | None = None, settings: ReadSettings = PLAIN,
                max_expansion: int = DEFAULT_MAX_EXPANSION, max_columns: int = DEFAULT_MAX_COLUMNS) -> CsvSource:
    """Open one input ('-' for stdin) and read its header (where `settings` say it is).

    Compression comes from the name (`.gz`, `.bz2`, `.zst`); an input read once (stdin, a FIFO,
    `<(...)`) without such a name is also looked at for gzip's, bzip2's and zstd's magic bytes, as it
    cannot be renamed.
    A compressed input that expands past `max_expansion` times its size stops there (expansion.py);
    a header of more than `max_columns` columns refuses the input (0: no limit)."""
    if item == STDIN:
        stdin = stdin if stdin is not None else sys.stdin.buffer if sys.stdin is not None else None
        if stdin is None:  # `csv2lp - <&-`
            raise InputError("-: stdin is closed; pipe the CSV into csv2lp, or give its file name.")
        counter = CountingReader(stdin)
        name, codec = "<stdin>", None
    else:
        path = Path(item)
        try:
            counter = CountingReader(open(path, "rb"))
        except FileNotFoundError:
            raise InputError(f"{item}: no such file.") from None
        except IsADirectoryError:
            raise InputError(f"{item}: is a directory; give the files in it (for example {item}/*.csv).") from None
        except OSError as exc:
            raise InputError(f"{item}: cannot open: {exc.strerror or exc}.") from None
        name, codec = str(item), COMPRESSION_BY_SUFFIX.get(path.suffix.lower())
    raw: io.RawIOBase = counter
    if codec is None and is_stream(item):
        head = _first_bytes(counter, 10, name)
        raw, codec = PrefixedReader(head, counter), _codec_of(head)
    decompressed = None
    if codec is not None:
        decompressed = decompressing(raw, codec, lambda stream: ExpansionLimit(stream, counter, max_expansion))
    stream: io.RawIOBase = decompressed if decompressed is not None else raw
    try:
        return CsvSource(name, stream, counter, delimiter=delimiter, block_size=block_size, settings=settings,
                         decompressed=decompressed, max_columns=max_columns)
    except StoppedByLimit as exc:  # in the header already
        counter.close()
        raise InputError(f"{name}: {exc}.") from None
    except (OSError, pa.ArrowInvalid) as exc:
        counter.close()
        check = "what is piped in" if is_stream(item) else "the file and its extension"
        raise InputError(f"{name}: cannot read ({codec or 'uncompressed'}): {exc}. Check {check}.") from exc
    except BaseException:
        counter.close()
        raise


# bzip2: "BZh", the block size digit, then the magic of the first block or of the stream's end:
# ten bytes no CSV header starts with (a header may well start with "BZh").
_BZIP2_START = re.compile(rb"BZh[1-9](\x31\x41\x59\x26\x53\x59|\x17\x72\x45\x38\x50\x90)")
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _codec_of(head: bytes) -> str | None:
    """The compression an input's first ten bytes show, for inputs without a name to tell it."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return "bz2" if _BZIP2_START.match(head) else None


def _first_bytes(stream: CountingReader, size: int, name: str) -> bytes:
    """The first `size` bytes (fewer at the end): a pipe may hand them out one read at a time."""
    head = b""
    try:
        while len(head) < size and (chunk := stream.read(size - len(head))):
            head += chunk
    except OSError as exc:
        stream.close()
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}.") from None
    return head


def file_size(item: str) -> int | None:
    """Bytes in a regular file; None for what has no size known beforehand (stdin, pipes, FIFOs)."""
    try:
        return None if is_stream(item) else os.path.getsize(item)
    except OSError:
        return None
