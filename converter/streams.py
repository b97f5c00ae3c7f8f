"""Byte-stream plumbing for the reader: counting, putting read bytes back, decompressing."""

from __future__ import annotations

import io
from typing import BinaryIO

import pyarrow as pa

COMPRESSION_BY_SUFFIX = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd"}
GZIP_MAGIC = b"\x1f\x8b"


class CountingReader(io.RawIOBase):
    """Counts the bytes taken from the underlying file: progress in on-disk bytes."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class PrefixedReader(io.RawIOBase):
    """Gives back bytes already taken from a stream (to read the header), then the rest."""

    def __init__(self, prefix: bytes, rest) -> None:
        self._prefix = memoryview(prefix)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n



class NativeAsRaw(io.RawIOBase):
    """A pyarrow NativeFile seen as a Python raw stream."""

    def __init__(self, native) -> None:
        self._native = native

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._native.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


def decompressing(raw: io.RawIOBase, codec: str) -> io.RawIOBase:
    return NativeAsRaw(pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), codec))
