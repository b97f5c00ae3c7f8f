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
deadlock. `release()` (at the end, or when the consumer stops early) lets every read
through, so Arrow's thread is never left waiting.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from .streams import ReadByRead

DEFAULT_LIMIT = 4
STALL_SECONDS = 0.01


class ReadAheadLimit(ReadByRead):
    """The stream Arrow reads from: at most `limit` reads ahead of the batches taken (above)."""

    def __init__(self, raw, limit: int = DEFAULT_LIMIT) -> None:
        self._raw = raw
        self._limit = limit
        self._reads = 0
        self._taken = 0
        self._asking = False
        self._released = False
        self._changed = threading.Condition()

    def read(self, size: int | None = -1) -> bytes:
        with self._changed:
            while not self._may_read():
                if not self._changed.wait(STALL_SECONDS) and self._asking:
                    break
            self._reads += 1
        return self._raw.read(size)

    def _may_read(self) -> bool:
        return self._released or self._reads - self._taken < self._limit

    @contextmanager
    def asking(self, *, for_batch: bool = True) -> Iterator[None]:
        """Around each call for the next batch, which counts as taken when the call returns;
        `for_batch=False` around opening the reader (Arrow reads the first block to start)."""
        with self._changed:
            self._asking = True
        try:
            yield
        finally:
            with self._changed:
                self._asking = False
                self._taken += for_batch
                self._changed.notify_all()

    def release(self) -> None:
        with self._changed:
            self._released = True
            self._changed.notify_all()

    @property
    def reads_ahead(self) -> int:
        """Reads handed out beyond the batches taken."""
        return self._reads - self._taken
