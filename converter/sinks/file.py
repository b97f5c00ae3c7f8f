"""Line sinks for stdout and files (`.gz` compresses). Writes whole batches of whole lines.

Lines go to the file descriptor with os.write, not through a Python buffer: a write that
fails (a full disk, an I/O error, a reader that closed the pipe) then tells exactly how
many bytes the system took, so the run can say how many whole lines made it out. A `.gz`
file goes through gzip's compressor, which cannot tell that: a failure there leaves a
file cut somewhere after the lines of the batches before.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import sys
from typing import BinaryIO, Protocol

import numpy as np
import pyarrow as pa

from ..arrow_buffers import offsets_of
from ..errors import STDOUT_CLOSED, OutputError, os_error_text


class LineSink(Protocol):
    bytes_written: int

    def write_lines(self, lines: pa.Array) -> int: ...
    def close(self) -> None: ...


class WriteFailed(OutputError):
    """A write to a sink failed: `lines_done` of the batch's lines were handed to the system."""

    def __init__(self, message: str, *, label: str, errno: int | None, lines_done: int) -> None:
        super().__init__(message, errno=errno)
        self.label = label
        self.lines_done = lines_done

    @property
    def reader_gone(self) -> bool:
        """The reader of a pipe went away (`csv2lp x.csv | head`)."""
        return self.errno == errno.EPIPE


def lines_buffer(lines: pa.Array) -> pa.Buffer:
    """The bytes of a string array's values, zero-copy: every line already ends in a newline."""
    if len(lines) == 0:
        return pa.py_buffer(b"")
    offsets = offsets_of(lines)
    start, end = int(offsets[0]), int(offsets[-1])
    return lines.buffers()[2].slice(start, end - start)


def whole_lines_in(lines: pa.Array, nbytes: int) -> int:
    """How many of `lines` lie whole in their first `nbytes` bytes."""
    offsets = offsets_of(lines)
    return int(np.searchsorted(offsets[1:] - offsets[0], nbytes, side="right"))


class StreamSink:
    """Batches of lines to a file descriptor, or to a Python stream where there is none (a test's
    captured stdout, a gzip file), flushed after every batch so a reader (Telegraf, a pipe) never waits.

    `label` names the output in messages: `-o out.lp`, `stdout`.
    """

    def __init__(self, stream: BinaryIO, *, owned: bool, label: str = "stdout") -> None:
        self._stream = stream
        self._owned = owned
        self.label = label
        self.bytes_written = 0
        self.lines_written = 0  # whole lines the system took
        try:
            self._fd: int | None = stream.fileno() if not isinstance(stream, gzip.GzipFile) else None
        except (OSError, ValueError, io.UnsupportedOperation):
            self._fd = None
        if self._fd is not None:
            stream.flush()  # whatever was written through the Python buffer goes first

    def write_lines(self, lines: pa.Array) -> int:
        buffer = lines_buffer(lines)
        if buffer.size:
            view = memoryview(buffer)
            done = 0
            try:
                if self._fd is not None:
                    while done < len(view):
                        done += os.write(self._fd, view[done:])
                else:
                    self._stream.write(view)
                    self._stream.flush()
                    done = len(view)
            except OSError as exc:
                # Unknown for a Python stream: none of this batch is counted as out.
                whole = whole_lines_in(lines, done) if self._fd is not None else 0
                self.bytes_written += done
                self.lines_written += whole
                raise self._failure(exc, whole) from None
            self.bytes_written += buffer.size
        self.lines_written += len(lines)
        return len(lines)

    def _failure(self, exc: OSError, lines_done: int) -> WriteFailed:
        cut = "; the .gz file is cut, not a complete gzip stream" if isinstance(self._stream, gzip.GzipFile) else ""
        return WriteFailed(f"{self.label}: cannot write: {os_error_text(exc)}{cut}", label=self.label,
                           errno=exc.errno, lines_done=lines_done)

    def close(self) -> None:
        try:
            if self._owned:
                self._stream.close()
            elif self._fd is None:
                self._stream.flush()
        except OSError as exc:  # a compressed file's last bytes, or an error the system reports at close
            raise self._failure(exc, 0) from None


def open_output(path: str | None) -> StreamSink:
    """`None` or '-' is stdout; a path ending in .gz is gzip-compressed. Open it only once every
    path the run writes has been checked (plan/outputs.py): opening truncates."""
    if path is None or path == "-":
        if sys.stdout is None:
            raise OutputError(STDOUT_CLOSED)
        return StreamSink(sys.stdout.buffer, owned=False)
    label = f"-o {path}"
    try:
        if path.endswith(".gz"):
            return StreamSink(gzip.open(path, "wb", compresslevel=6), owned=True, label=label)  # type: ignore[arg-type]
        return StreamSink(open(path, "wb", buffering=0), owned=True, label=label)
    except OSError as exc:
        raise OutputError(f"{label}: cannot open it for writing: {os_error_text(exc)}.", errno=exc.errno) from None
