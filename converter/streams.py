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


def decompressing(raw: io.RawIOBase, codec: str) -> io.RawIOBase:
    return NativeAsRaw(pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), codec))
