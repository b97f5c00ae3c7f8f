"""Telegraf's side of `csv2lp execd`: the pipes, the log and the stop requests.

The contract (telegraf plugins/inputs/execd, v1.39.3) and how it is kept here:

- stdout carries line protocol only. fd 1 is taken over at start: lines go through a
  private copy of it, and fd 1 and sys.stdout then point at stderr, so a stray print
  (a library, a warning) is logged by Telegraf instead of parsed as a metric.
- Lines are written whole: a `kill -9` never leaves half a line in the pipe, which
  Telegraf would parse as a point (`m v=2i 17000` from `m v=2i 1700000000000000000`).
  Lines go out in writes of whole lines of at most PIPE_BUF (4 KiB) bytes, which a pipe
  takes all or nothing. A longer line (string fields may hold 64 KiB) is written in one
  write() only once the pipe has room for all of it (FIONREAD, F_GETPIPE_SZ; the pipe is
  enlarged for it when it could never hold it): Linux then copies it without waiting, and
  a signal, SIGKILL included, takes effect only after the copy. A line longer than the
  largest pipe (/proc/sys/fs/pipe-max-size, 1 MiB by default) cannot be written so: the
  spooler does not send it and says so in an E! line. Only where the kernel refuses to
  enlarge the pipe (the user's pipe pages used up) is a long line written in parts.
- Logs go to stderr, one line each, prefixed `E! `/`W! `/`I! `/`D! `, at most 2 KiB:
  Telegraf stops reading stderr for good after a line over 64 KiB.
- stdin EOF (Telegraf stopping) or SIGTERM: the current batch is finished, the checkpoint
  is saved, and the process waits until Telegraf has read every byte of the pipe before
  it exits 0 (Go closes the pipe as soon as the child is gone, losing what was unread).
  Last it closes its ends of the pipes, so that Telegraf's readers end on EOF, not on
  "file already closed".
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import stat
import struct
import sys
import termios
import threading
import time
from pathlib import Path
from select import PIPE_BUF

import numpy as np
import pyarrow as pa

from ..arrow_buffers import offsets_of
from ..sinks.file import lines_buffer

LOG_LINE_LIMIT = 2048
HANG_UP_GRACE_S = 0.05
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)  # Linux; Python < 3.10 lacks the names
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class Log:
    """Telegraf-style log lines on stderr: one write per line, so threads never interleave."""

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd

    def _write(self, level: str, message: str) -> None:
        text = " | ".join(part for part in message.splitlines() if part.strip()) or "-"
        if len(text) > LOG_LINE_LIMIT:
            text = text[: LOG_LINE_LIMIT - 15] + " [truncated]"
        try:
            os.write(self.fd, f"{level}! {text}\n".encode("utf-8", errors="replace"))
        except OSError:
            pass  # Telegraf is gone: nobody is left to tell

    def error(self, message: str) -> None:
        self._write("E", message)

    def warn(self, message: str) -> None:
        self._write("W", message)

    def info(self, message: str) -> None:
        self._write("I", message)

    def debug(self, message: str) -> None:
        self._write("D", message)


def line_aligned_chunks(ends: np.ndarray, limit: int = PIPE_BUF) -> list[tuple[int, int]]:
    """(start, end) byte ranges of whole lines, each at most `limit` bytes (a longer line alone).

    `ends[i]` is where line i ends (exclusive), counted from the first line's start.
    """
    chunks: list[tuple[int, int]] = []
    start, total = 0, int(ends[-1]) if len(ends) else 0
    while start < total:
        fit = int(np.searchsorted(ends, start + limit, side="right"))
        end = int(ends[fit - 1]) if fit else 0
        if end <= start:  # the next line alone is longer than `limit`
            end = int(ends[np.searchsorted(ends, start, side="right")])
        chunks.append((start, end))
        start = end
    return chunks


PAGE = 4096
ROOM_POLL_S = 0.002


def pipe_max_size() -> int:
    """The largest pipe an unprivileged process may ask for (Linux), 1 MiB by default."""
    try:
        return int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except (OSError, ValueError):
        return 1 << 20


class LineWriter:
    """The private stdout: whole lines only, in writes a kill cannot cut (see the module docstring)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.bytes_written = 0
        self.is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)

    def longest_line(self) -> int | None:
        """The longest line that can be written whole (None: any, stdout is not a pipe)."""
        return pipe_max_size() - 2 * PAGE if self.is_pipe else None

    def write_lines(self, lines: pa.Array) -> None:
        if not len(lines):
            return
        data = memoryview(lines_buffer(lines))
        offsets = offsets_of(lines)
        for start, end in line_aligned_chunks(offsets[1:] - offsets[0]):
            if end - start > PIPE_BUF and self.is_pipe:
                self._wait_for_room(end - start)  # a long line goes alone, once it fits
            while start < end:  # more than one write only for a line the pipe could not hold
                start += os.write(self.fd, data[start:end])
        self.bytes_written += len(data)

    def write_text(self, text: bytes) -> None:
        """One short line of our own (a delivery mark), in one write."""
        assert len(text) <= PIPE_BUF and text.endswith(b"\n")
        os.write(self.fd, text)
        self.bytes_written += len(text)

    def _wait_for_room(self, size: int) -> None:
        """Until the pipe has room for `size` bytes at once; BrokenPipeError when its reader is gone.

        The room is counted in whole pages, less one for the page being read and one for the
        page being written, so that the kernel copies the whole write without waiting."""
        capacity = fcntl.fcntl(self.fd, F_GETPIPE_SZ)
        if size > capacity - 2 * PAGE:
            wanted = min(pipe_max_size(), 1 << (size + 3 * PAGE - 1).bit_length())
            try:
                capacity = fcntl.fcntl(self.fd, F_SETPIPE_SZ, wanted)
            except OSError:
                pass  # refused (the user's pipe pages are used up): as below
            if size > capacity - 2 * PAGE:
                return  # it can never hold the line at once: written in parts (see the module docstring)
        poller = select.poll()
        poller.register(self.fd, select.POLLOUT)
        while True:
            unread = _unread(self.fd)
            if capacity - (unread + PAGE - 1) // PAGE * PAGE - 2 * PAGE >= size:
                return
            for _, events in poller.poll(int(ROOM_POLL_S * 1000) or 1):
                if events & (select.POLLERR | select.POLLHUP):
                    raise BrokenPipeError(errno.EPIPE, "the reader closed the pipe")
            time.sleep(ROOM_POLL_S)

    def drain(self, timeout: float) -> int:
        """Wait until the reader has taken every byte we wrote; return what is still unread."""
        return wait_until_read(self.fd, timeout)


def _unread(fd: int) -> int:
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def wait_until_read(fd: int, timeout: float) -> int:
    """FIONREAD on our end of a pipe tells how much the reader has not read yet (Linux)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            unread = _unread(fd)
        except OSError:
            return 0  # not a pipe (a file, a terminal): nothing to wait for
        if unread == 0 or time.monotonic() >= deadline:
            return unread
        time.sleep(0.005)


def claim_stdout() -> int:
    """Keep the real stdout for line protocol; send fd 1 and sys.stdout to stderr from now on."""
    sys.stdout.flush()
    lines_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return lines_fd


# ------------------------------------------------------------------------ stop requests


class StopRequest:
    """Set by stdin EOF, SIGTERM or SIGINT; every wait in execd is a wait on `event`."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None
        self.at: float | None = None
        self._also: list[threading.Event] = []

    def also_wake(self, event: threading.Event) -> None:
        """Set `event` too on a stop request: a wait on it (the idle spool) ends at once."""
        self._also.append(event)
        if self.event.is_set():
            event.set()

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason, self.at = reason, time.monotonic()
        self.event.set()
        for event in self._also:
            event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout: float) -> bool:
        return self.event.wait(timeout)


def watch_stdin(stop: StopRequest) -> None:
    """Read stdin until EOF. Telegraf writes nothing with signal = "none"; newlines are ignored."""
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass  # no stdin at all counts as closed
    stop.set("stdin closed")


def install_stop_handlers(stop: StopRequest) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: stop.set(signal.Signals(number).name))
    threading.Thread(target=watch_stdin, args=(stop,), name="csv2lp-stdin", daemon=True).start()



def hang_up(lines_fd: int) -> None:
    """Close our ends of Telegraf's pipes, then give its readers a moment to see EOF.

    Go's exec.Cmd.Wait closes the read ends once the child is gone; a reader still blocked
    in read() then fails with "read |0: file already closed", which Telegraf logs as an
    error at every shutdown. Readers that got EOF first end quietly.
    """
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in (lines_fd, 1, 2):
        os.dup2(null, fd)  # closes the pipe end; a late write (at interpreter exit) goes nowhere
    os.close(null)
    time.sleep(HANG_UP_GRACE_S)

