"""Wake the spool loop when a file arrives, and know which files were renamed into place.

The drop protocol (telegraf/README.md) is: write the file elsewhere, then rename it into
the spool. A rename is atomic, so a file seen arriving by rename is complete at once;
without that knowledge the loop can only wait until the file has not changed for
`poll_seconds` (a copy still running keeps changing it). Linux's inotify tells both:
IN_MOVED_TO names a file renamed in, IN_CLOSE_WRITE one written in place (still subject
to the settle rule), and either wakes the loop at once instead of at its next scan.

inotify is reached through ctypes (libc's inotify_init1 / inotify_add_watch): no
dependency, and where it is missing (another OS, the watch limit reached) the loop polls
every `poll_seconds` as before, with every file subject to the settle rule.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import threading
from pathlib import Path

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name


class Arrivals:
    """`wait(timeout)` returns early when something arrives; `renamed_in(name)` says how it came."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.wake = threading.Event()
        self._renamed: set[str] = set()
        self._lock = threading.Lock()
        self._fd = _watch(folder)
        if self._fd is not None:
            threading.Thread(target=self._read, name="csv2lp-arrivals", daemon=True).start()

    @property
    def watching(self) -> bool:
        return self._fd is not None

    def wait(self, timeout: float) -> None:
        """Until something arrives (or a stop request sets `wake` too), or `timeout` passes."""
        self.wake.wait(timeout)
        self.wake.clear()

    def renamed_in(self, name: str) -> bool:
        with self._lock:
            return name in self._renamed

    def forget(self, name: str) -> None:
        """The file has left the spool (done/, error/): a later file of that name starts afresh."""
        with self._lock:
            self._renamed.discard(name)

    def _read(self) -> None:
        assert self._fd is not None
        while True:
            try:
                data = os.read(self._fd, 64 * 1024)
            except OSError:
                return
            if not data:
                return
            offset = 0
            with self._lock:
                while offset + _EVENT.size <= len(data):
                    _wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                    name = data[offset + _EVENT.size: offset + _EVENT.size + length].rstrip(b"\0")
                    offset += _EVENT.size + length
                    text = os.fsdecode(name)
                    if mask & IN_MOVED_TO:
                        self._renamed.add(text)
                    elif mask & IN_CLOSE_WRITE:
                        self._renamed.discard(text)  # written in place after all: it must settle
            self.wake.set()


def _watch(folder: Path) -> int | None:
    """An inotify descriptor watching `folder`, or None where inotify cannot be had."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        init, add = libc.inotify_init1, libc.inotify_add_watch
    except (OSError, AttributeError):
        return None
    init.argtypes, init.restype = [ctypes.c_int], ctypes.c_int
    add.argtypes, add.restype = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32], ctypes.c_int
    fd = init(IN_CLOEXEC)
    if fd < 0:
        return None
    if add(fd, os.fsencode(folder), IN_MOVED_TO | IN_CLOSE_WRITE) < 0:
        os.close(fd)
        return None
    return fd
