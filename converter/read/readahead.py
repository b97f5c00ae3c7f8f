"""A bound on how far Arrow's CSV reader reads ahead of the batches taken from it.

pyarrow's streaming CSV reader pulls its input on a background I/O thread into a queue of
up to 32 blocks (arrow/util/async_generator.h, MakeBackgroundGenerator's default queue),
whatever the consumer does with the batches. With 1 MiB blocks that held 33 MB of input in
memory for nothing, with 4 MiB blocks 140 MB: the largest share of csv2lp's peak RSS.

`ReadAheadLimit` sits between Arrow and the input: a read waits while `limit` more reads
than batches taken have already been handed out. The consumer wraps each call for the
next batch in `with limit.asking():`. Arrow's reader itself asks for a few blocks beyond
the batch it is parsing (up to 3 were seen with 1-4 MiB blocks; a row cannot span more
than two blocks, that is Arrow's "straddling object" error), and a limit of 4 never held a
read back that a waiting batch needed. Should it happen anyway, a read held back while the
consumer is asking goes ahead after `STALL_SECONDS`: a few milliseconds lost, never a
deadlock. `end()` (when the consumer is done, at the end or early) makes every later read
the end of the input, so that Arrow's thread is never left waiting and stops reading at
once instead of filling its queue.

A reader left half-way and never closed (a library user who takes a few blocks and exits)
would leave Arrow's thread calling into Python while the interpreter shuts down, which
aborts the process (PyGILState_Release, "must be current"). Every limit still open is
therefore ended at exit, and the exit waits for the read in progress, if any.

With `keep_pieces`, the limit also keeps what each read handed out, from the read of the last
batch taken on (the reads ahead of it Arrow holds anyway): Arrow's serial reader makes batch k
of read k, so when it fails on a row too long for a block, the reader finds that row's start
in the piece of the last batch and reads on from there (reader.py, `CsvSource._skip_long_row`).
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from contextlib import contextmanager
from typing import Iterator

from .streams import ReadByRead

DEFAULT_LIMIT = 4
STALL_SECONDS = 0.01
EXIT_WAIT_SECONDS = 1.0  # for a read in progress at exit (a file read; a pipe may never answer)

_OPEN: weakref.WeakSet[ReadAheadLimit] = weakref.WeakSet()


class ReadAheadLimit(ReadByRead):
    """The stream Arrow reads from: at most `limit` reads ahead of the batches taken (above)."""

    def __init__(self, raw, limit: int = DEFAULT_LIMIT, *, keep_pieces: bool = False) -> None:
        self._raw = raw
        self._keep_pieces = keep_pieces
        self.pieces: dict[int, bytes] = {}  # read number (1 = the first) -> what it handed out
        self._limit = limit
        self._reads = 0
        self._taken = 0
        self._asking = False
        self._ended = False
        self._reading = 0  # reads in progress below
        self._end_given = False  # Arrow was handed the end of the input: it reads no more
        self._changed = threading.Condition()
        _OPEN.add(self)

    def read(self, size: int | None = -1) -> bytes:
        with self._changed:
            while not self._may_read():
                if not self._changed.wait(STALL_SECONDS) and self._asking:
                    break
            if self._ended:
                self._end_given = True
                self._changed.notify_all()
                return b""
            self._reads += 1
            self._reading += 1
            number = self._reads
        data = b""
        try:
            data = self._raw.read(size)
            return data
        finally:
            with self._changed:
                self._reading -= 1
                self._end_given |= not data
                if self._keep_pieces and data:
                    self.pieces[number] = data
                self._changed.notify_all()

    def _may_read(self) -> bool:
        return self._ended or self._reads - self._taken < self._limit

    @contextmanager
    def asking(self, *, for_batch: bool = True) -> Iterator[None]:
        """Around each call for the next batch, which counts as taken when the call returns;
        `for_batch=False` around opening the reader (Arrow reads the first block to start)."""
        with self._changed:
            self._asking = True
        taken = False
        try:
            yield
            taken = for_batch
        finally:
            with self._changed:
                self._asking = False
                self._taken += for_batch
                if taken:  # the pieces before the last batch's are done with (a failed call keeps them)
                    for number in [n for n in self.pieces if n < self._taken]:
                        del self.pieces[number]
                self._changed.notify_all()

    def end(self, *, wait: float = 0.0, for_reads_only: bool = False) -> None:
        """Every read from now on is the end of the input. With `wait`: wait up to that long for
        Arrow to have been handed that end (after a read in progress, it asks once more), or with
        `for_reads_only` for the read in progress only (a failed reader may never ask again)."""
        deadline = time.monotonic() + wait
        with self._changed:
            self._ended = True
            self._changed.notify_all()
            while (self._reading or not (self._end_given or for_reads_only)) and time.monotonic() < deadline:
                self._changed.wait(STALL_SECONDS)
        _OPEN.discard(self)

    @property
    def reads_ahead(self) -> int:
        """Reads handed out beyond the batches taken."""
        return self._reads - self._taken


@atexit.register
def _end_open_limits() -> None:
    limits = list(_OPEN)
    for limit in limits:
        limit.end(wait=EXIT_WAIT_SECONDS)
    if limits:
        time.sleep(STALL_SECONDS)  # the time for Arrow's thread to leave Python with that answer
