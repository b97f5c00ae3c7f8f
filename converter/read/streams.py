"""Byte-stream plumbing for the reader: counting, putting read bytes back, decompressing.

Each stream answers `read(n)` itself with the bytes object it got from the stream below:
io.RawIOBase's own `read` would allocate a fresh n-byte buffer and copy into it at every
level, which for 1 MiB reads cost more than Arrow's whole parse of the block (page faults
of a new mapping each time).
"""

from __future__ import annotations

import io
from typing import BinaryIO

import pyarrow as pa

COMPRESSION_BY_SUFFIX = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd"}
GZIP_MAGIC = b"\x1f\x8b"


class StoppedByLimit(Exception):
    """A limit ended the input (expansion.py): it ends there as damage does, with its own message."""


class ReadByRead(io.RawIOBase):
    """A raw stream whose subclass answers read(n); readinto (what io.BufferedReader calls) copies that."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class CountingReader(ReadByRead):
    """Counts the bytes taken from the underlying file: progress in on-disk bytes."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.count += len(data)
        return data

    def close(self) -> None:
        self._raw.close()
        super().close()


class PrefixedReader(ReadByRead):
    """Gives back bytes already taken from a stream (to read the header), then the rest."""

    def __init__(self, prefix: bytes, rest) -> None:
        self._prefix = memoryview(prefix)
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            n = len(self._prefix) if size is None or size < 0 else min(size, len(self._prefix))
            data = bytes(self._prefix[:n])
            self._prefix = self._prefix[n:]
            return data
        return self._rest.read(size)


class NativeAsRaw(ReadByRead):
    """A pyarrow NativeFile seen as a Python raw stream."""

    def __init__(self, native) -> None:
        self._native = native

    def read(self, size: int = -1) -> bytes:
        return self._native.read(None if size is None or size < 0 else size)


# Decompressed bytes are taken in pieces this large: a decompressor that meets damage fails the
# whole read (Arrow's and Python's alike), so the text of that read is lost; 16 KiB is about a
# hundred Movebank rows, and the extra calls cost nothing next to the decompression itself
# (fishers x 20 as .gz: 1.06 against 1.07 s with 2 MiB reads, fastest of 6).
DECOMPRESSED_PIECE = 1 << 14
# How far past a read's size a line break is waited for; past that (no line break in 16 MiB:
# not CSV, or a row Arrow refuses as longer than a block anyway) the bytes go out as they are.
LINE_BREAK_WAIT = 16 << 20


class WholeLines(ReadByRead):
    """A decompressed stream that hands out bytes up to the last line break it has seen only,
    so that damage cuts it between rows.

    When the stream below fails, the complete lines before the failure are still handed out;
    `failure` keeps the exception and `cut_off` the incomplete line it left. Then reads raise
    the failure, or, while `hold_failure` is set, return the end of the input: Arrow's reader
    sets it, as a failed read makes it drop the blocks it has read ahead; whoever sets it
    must check `failure` once the reader is done. A clean end releases the last line, with
    or without its line break.
    """

    def __init__(self, raw) -> None:
        self._raw = raw
        self._pieces: list[bytes] = []  # read from below, not handed out yet
        self._held = 0  # their bytes
        self._complete = 0  # of those, the bytes up to the last line break: what may be handed out
        self._ended = False
        self.failure: Exception | None = None
        self.cut_off = b""
        self.hold_failure = False

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        if (size < 0 or self._complete < size) and not self._ended and self.failure is None:
            self._fill(size)
        n = self._complete if size < 0 else min(size, self._complete)
        if n == 0:
            if self.failure is not None and size and not self.hold_failure:
                raise self.failure
            return b""
        return self._take(n)

    def _fill(self, size: int) -> None:
        """Read pieces until `size` bytes up to a line break are held, or the end, or a failure."""
        while size < 0 or self._complete < size:
            try:
                piece = self._raw.read(DECOMPRESSED_PIECE)
            except (OSError, EOFError, pa.ArrowInvalid, StoppedByLimit) as exc:
                self.failure = exc
                held = b"".join(self._pieces)
                self.cut_off = held[self._complete:]
                self._pieces = [held[:self._complete]] if self._complete else []
                self._held = self._complete
                return
            if not piece:
                self._ended = True
                self._complete = self._held  # the last line needs no line break
                return
            self._pieces.append(piece)
            self._held += len(piece)
            last_break = piece.rfind(b"\n")
            if last_break >= 0:
                self._complete = self._held - len(piece) + last_break + 1
            elif size >= 0 and self._held - self._complete > size + LINE_BREAK_WAIT:
                self._complete = self._held

    def _take(self, n: int) -> bytes:
        """The first n bytes held, in one bytes object (one copy, as a read from below would make)."""
        taken: list[bytes] = []
        left = n
        while left:
            piece = self._pieces[0]
            if len(piece) <= left:
                taken.append(self._pieces.pop(0))
                left -= len(piece)
            else:
                taken.append(piece[:left])
                self._pieces[0] = piece[left:]
                left = 0
        self._held -= n
        self._complete -= n
        return taken[0] if len(taken) == 1 else b"".join(taken)


def decompressing(raw: io.RawIOBase, codec: str, limit=None) -> WholeLines:
    """`raw` decompressed, in whole lines; `limit(stream)` wraps the decompressed stream (expansion.py)."""
    stream: io.RawIOBase = NativeAsRaw(pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), codec))
    return WholeLines(limit(stream) if limit is not None else stream)
