"""converter.read.readahead: Arrow's reader stays a few blocks ahead of the batches taken, no more."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time

import pytest

import converter.read.source
from converter.read.readahead import STALL_SECONDS, ReadAheadLimit
from converter.read.inputs import open_source
from support.data import REPO


class CountedReads(io.RawIOBase):
    def __init__(self) -> None:
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        return b"x" * max(size, 1)


def _reading_in_background(limit: ReadAheadLimit, reads: int) -> threading.Thread:
    thread = threading.Thread(target=lambda: [limit.read(10) for _ in range(reads)], daemon=True)
    thread.start()
    return thread


def _settle(raw: CountedReads, expected: int) -> None:
    """Wait until the background reader has made `expected` reads, then a little longer, so
    that a read it should not make has had the time to happen (a busy machine is slow)."""
    deadline = time.monotonic() + 10
    while raw.reads < expected and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(20 * STALL_SECONDS)


def test_reads_wait_at_the_limit_until_a_batch_is_taken():
    raw = CountedReads()
    limit = ReadAheadLimit(raw, limit=3)
    thread = _reading_in_background(limit, reads=5)
    _settle(raw, 3)
    assert raw.reads == 3 and limit.reads_ahead == 3
    with limit.asking():
        pass
    _settle(raw, 4)
    assert raw.reads == 4
    limit.end()
    thread.join(timeout=5)
    assert raw.reads == 4 and not thread.is_alive()  # the fifth read was the end of the input


def test_opening_the_reader_is_not_a_batch_taken():
    raw = CountedReads()
    limit = ReadAheadLimit(raw, limit=2)
    with limit.asking(for_batch=False):
        pass
    thread = _reading_in_background(limit, reads=3)
    _settle(raw, 2)
    assert raw.reads == 2
    limit.end()
    thread.join(timeout=5)


def test_a_read_held_back_while_the_consumer_waits_goes_ahead_after_the_stall_time():
    raw = CountedReads()
    limit = ReadAheadLimit(raw, limit=1)
    limit.read(10)
    with limit.asking():
        started = time.perf_counter()
        limit.read(10)  # held back (one read ahead already), yet the consumer is asking: no deadlock
        waited = time.perf_counter() - started
    assert raw.reads == 2
    assert STALL_SECONDS * 0.9 <= waited < 2.0


@pytest.fixture
def recorded_limits(monkeypatch):
    limits: list[ReadAheadLimit] = []

    class Recorded(ReadAheadLimit):
        def __init__(self, raw, **kwargs) -> None:
            super().__init__(raw, **kwargs)
            limits.append(self)

    monkeypatch.setattr(converter.read.source, "ReadAheadLimit", Recorded)
    return limits


def test_arrow_reads_only_a_few_blocks_ahead_of_the_batches_taken(tmp_path, recorded_limits):
    # ~3 MB in 64 KiB blocks: unlimited, Arrow's background reader would run up to 32
    # blocks ahead of a consumer that looks at each batch before asking for the next.
    path = tmp_path / "many-blocks.csv"
    path.write_text("a,b\n" + "".join(f"{i},{'v' * 40}\n" for i in range(70_000)))
    source = open_source(str(path), block_size=1 << 16)
    ahead, rows = [], 0
    for block in source.blocks():
        time.sleep(0.002)  # the consumer is slower than the disk, as when it encodes
        ahead.append(recorded_limits[0].reads_ahead)
        rows += block.cells.num_rows
    assert rows == 70_000
    assert len(ahead) > 40
    # The limit is 4; a read goes ahead after the stall time only while the consumer waits for
    # a batch, which a loaded machine may make happen a few times. Unlimited, this reached 34.
    assert max(ahead) <= 8


def test_end_wakes_a_held_back_read_and_every_later_read_is_the_end_of_the_input():
    raw = CountedReads()
    limit = ReadAheadLimit(raw, limit=1)
    got: list[bytes] = []
    thread = threading.Thread(target=lambda: got.extend(limit.read(10) for _ in range(3)), daemon=True)
    thread.start()
    _settle(raw, 1)
    assert raw.reads == 1 and thread.is_alive()  # the second read is held back
    limit.end(wait=5)
    thread.join(timeout=5)
    assert got == [b"x" * 10, b"", b""] and raw.reads == 1


ABANDONING = """
import sys
from converter.read.inputs import open_source
blocks = open_source(sys.argv[1], block_size=1 << 16).blocks()
next(blocks)  # one block taken, the reader left open: Arrow's thread is still reading ahead
"""


def test_a_program_that_leaves_a_reader_half_way_exits_cleanly(tmp_path):
    """Without ending the limits at exit, Arrow's thread called into Python while the interpreter
    shut down: 'Fatal Python error: PyGILState_Release', status -6, in 5 runs out of 5."""
    path = tmp_path / "many-blocks.csv"
    path.write_text("a,b\n" + "".join(f"{i},{'v' * 40}\n" for i in range(70_000)))
    for _ in range(5):
        done = subprocess.run([sys.executable, "-c", ABANDONING, str(path)], capture_output=True, timeout=60,
                              cwd=REPO)
        assert (done.returncode, done.stderr) == (0, b""), done.stderr.decode()
