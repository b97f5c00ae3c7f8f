"""Line sinks for stdout and files (`.gz` compresses). Writes whole batches of whole lines."""

from __future__ import annotations

import gzip
import sys
from typing import BinaryIO, Protocol

import pyarrow as pa

from ..arrow_buffers import offsets_of


class LineSink(Protocol):
    bytes_written: int

    def write_lines(self, lines: pa.Array) -> int: ...
    def close(self) -> None: ...


def lines_buffer(lines: pa.Array) -> pa.Buffer:
    """The bytes of a string array's values, zero-copy: every line already ends in a newline."""
    if len(lines) == 0:
        return pa.py_buffer(b"")
    offsets = offsets_of(lines)
    start, end = int(offsets[0]), int(offsets[-1])
    return lines.buffers()[2].slice(start, end - start)


class StreamSink:
    """A binary stream; flushed after every batch so a reader (Telegraf, a pipe) never waits."""

    def __init__(self, stream: BinaryIO, *, owned: bool) -> None:
        self._stream = stream
        self._owned = owned
        self.bytes_written = 0

    def write_lines(self, lines: pa.Array) -> int:
        buffer = lines_buffer(lines)
        if buffer.size:
            self._stream.write(memoryview(buffer))
            self._stream.flush()
            self.bytes_written += buffer.size
        return len(lines)

    def close(self) -> None:
        if self._owned:
            self._stream.close()
        else:
            self._stream.flush()


def open_output(path: str | None) -> StreamSink:
    """`None` or '-' is stdout; a path ending in .gz is gzip-compressed."""
    if path is None or path == "-":
        return StreamSink(sys.stdout.buffer, owned=False)
    if path.endswith(".gz"):
        return StreamSink(gzip.open(path, "wb", compresslevel=6), owned=True)  # type: ignore[arg-type]
    return StreamSink(open(path, "wb"), owned=True)
