"""WholeLines: a decompressed stream hands out whole lines only, so that damage cuts it between rows."""

from __future__ import annotations

import io

import pytest

from converter.read import streams
from converter.read.streams import WholeLines


class FailingAfter(io.RawIOBase):
    """Gives `data` in reads of at most `piece` bytes, then fails (or ends, if `fail` is False)."""

    def __init__(self, data: bytes, piece: int, fail: bool = True) -> None:
        self._data, self._piece, self._fail = data, piece, fail

    def read(self, size: int = -1) -> bytes:
        if not self._data:
            if self._fail:
                raise OSError("Truncated compressed stream")
            return b""
        piece, self._data = self._data[:self._piece], self._data[self._piece:]
        return piece


def read_all(stream: WholeLines, size: int) -> list[bytes]:
    reads = []
    while data := stream.read(size):
        reads.append(data)
    return reads


LINES = b"".join(b"row %d,%s\n" % (i, b"x" * (i % 37)) for i in range(3000))


@pytest.mark.parametrize("size", [1, 100, 4096, 50_000])
def test_reads_keep_their_size_and_a_clean_end_gives_every_byte(size, monkeypatch) -> None:
    monkeypatch.setattr(streams, "DECOMPRESSED_PIECE", 1000)
    data = LINES + b"last row without a line break"
    reads = read_all(WholeLines(FailingAfter(data, 1000, fail=False)), size)
    assert b"".join(reads) == data
    assert all(len(r) <= size for r in reads)


@pytest.mark.parametrize("cut", [1, 5000, 5001, len(LINES) // 2, len(LINES) - 1])
def test_a_failure_hands_out_the_whole_lines_before_it_and_keeps_the_cut_one(cut, monkeypatch) -> None:
    monkeypatch.setattr(streams, "DECOMPRESSED_PIECE", 700)
    stream = WholeLines(FailingAfter(LINES[:cut], 700))
    stream.hold_failure = True
    handed = b"".join(read_all(stream, 4096))
    assert isinstance(stream.failure, OSError)
    assert handed == LINES[:LINES.rfind(b"\n", 0, cut) + 1]
    assert handed + stream.cut_off == LINES[:cut]
    assert stream.read(4096) == b""  # held: the end of the input, again and again


def test_without_hold_a_read_after_the_whole_lines_raises_the_failure(monkeypatch) -> None:
    monkeypatch.setattr(streams, "DECOMPRESSED_PIECE", 700)
    stream = WholeLines(FailingAfter(LINES[:2500], 700))
    handed = stream.read(100_000)
    assert handed == LINES[:LINES.rfind(b"\n", 0, 2500) + 1]
    with pytest.raises(OSError, match="Truncated"):
        stream.read(100_000)


def test_a_failure_at_the_first_read_raises_at_once() -> None:
    with pytest.raises(OSError, match="Truncated"):
        WholeLines(FailingAfter(b"", 700)).read(4096)


def test_bytes_without_a_line_break_go_out_after_a_bounded_wait(monkeypatch) -> None:
    monkeypatch.setattr(streams, "DECOMPRESSED_PIECE", 1000)
    monkeypatch.setattr(streams, "LINE_BREAK_WAIT", 5000)
    raw = FailingAfter(b"x" * 1_000_000, 1000, fail=False)
    stream = WholeLines(raw)
    assert stream.read(4096) == b"x" * 4096
    assert len(raw._data) >= 1_000_000 - 11_000  # it did not read on to the end for a line break
