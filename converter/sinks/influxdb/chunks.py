"""Request bodies of whole lines, and which connection each line travels on.

Two things happen here, both per block of lines with Arrow and numpy, never per line:

- `time_routes` gives every line a connection by its timestamp. InfluxDB keeps the LAST
  write of a point (measurement + tags + time), and a point can appear twice in a file
  (`--duplicates warn` lets it through). Two requests in flight side by side may land in
  either order, so both copies of a point must travel on the same connection, where
  requests go one after the other, in file order. Any function of the time alone does
  that: equal points have equal times. The time is the line's last word, digits before
  the newline, read straight from the Arrow data buffer; a hash of its value spreads the
  lines evenly whatever the spacing of the times (whole seconds written in ns end in nine
  zeros, ten-minute fixes in s in two). A line without a time (the server stamps it on
  arrival) is routed by the digits its last field ends in: such points are stamped with
  the arrival time of their request, so they never were points of a fixed identity.

- `Batcher` collects one connection's lines into chunks of `batch_lines` lines (at most
  `max_bytes`), across the blocks the pipeline hands over, as zero-copy slices of the
  blocks' buffers: a block of 14,000 lines split over two connections still makes
  requests of 5,000 lines, not of the 7,000 and 2,000 a block would leave.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ...arrow_buffers import bytes_of, offsets_of
from ..file import lines_buffer

# A timestamp is a signed 64-bit integer: at most 19 digits.
TIME_DIGITS = 19
_ZERO = np.uint8(ord("0"))
# splitmix64's finalizer (Steele, Lea, Flood 2014): every bit of the time moves the route.
_MIX_1, _MIX_2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


@dataclass
class Chunk:
    """One request's worth of lines: their count and their bytes (slices of Arrow buffers)."""

    lines: int = 0
    nbytes: int = 0
    pieces: list[pa.Buffer] = field(default_factory=list)

    def body(self) -> bytes:
        return b"".join(memoryview(piece) for piece in self.pieces)


def line_times(lines: pa.Array) -> np.ndarray:
    """The value of the digits each line ends in (before its newline), as uint64.

    For a line of line protocol with a timestamp that is its time (negative times lose
    their sign: the route does not care). Digits are read from the end, one position per
    step for all lines at once; the loop stops when no line has more digits.
    """
    n = len(lines)
    value = np.zeros(n, dtype=np.uint64)
    if n == 0:
        return value
    offsets = offsets_of(lines).astype(np.int64)
    data = bytes_of(lines)
    starts, position = offsets[:-1], offsets[1:] - 2  # the byte before each line's "\n"
    scale = np.uint64(1)
    running = np.ones(n, dtype=bool)
    for _ in range(TIME_DIGITS):
        running &= position >= starts
        digit = data[np.maximum(position, 0)] - _ZERO  # uint8: a non-digit wraps to >= 10
        running &= digit < 10
        if not running.any():
            break
        value += np.where(running, digit, 0).astype(np.uint64) * scale
        scale *= np.uint64(10)
        position -= 1
    return value


def time_routes(lines: pa.Array, connections: int) -> np.ndarray:
    """The connection (0 .. connections-1) of every line: a hash of its time, so that all
    copies of a point go the same way."""
    mixed = line_times(lines)
    with np.errstate(over="ignore"):  # the hash multiplies modulo 2**64 on purpose
        mixed ^= mixed >> np.uint64(30)
        mixed *= _MIX_1
        mixed ^= mixed >> np.uint64(27)
        mixed *= _MIX_2
        mixed ^= mixed >> np.uint64(31)
    return (mixed % np.uint64(connections)).astype(np.intp)


def split_by_route(lines: pa.Array, connections: int) -> list[pa.Array]:
    """`lines` cut into one array per connection, each in file order."""
    if connections == 1:
        return [lines]
    routes = time_routes(lines, connections)
    return [lines.filter(pa.array(routes == c)) for c in range(connections)]


class Batcher:
    """Collects lines into chunks of `batch_lines` lines and at most `max_bytes` bytes
    (a single longer line is a chunk on its own)."""

    def __init__(self, *, batch_lines: int, max_bytes: int) -> None:
        self.batch_lines = batch_lines
        self.max_bytes = max_bytes
        self._open = Chunk()

    @property
    def pending_lines(self) -> int:
        return self._open.lines

    def add(self, lines: pa.Array) -> list[Chunk]:
        """Take `lines`; return the chunks that are full now (the rest waits for more, or `flush`)."""
        full: list[Chunk] = []
        n = len(lines)
        if n == 0:
            return full
        offsets = offsets_of(lines).astype(np.int64)
        start = 0
        while start < n:
            chunk = self._open
            stop = min(n, start + self.batch_lines - chunk.lines)
            room = self.max_bytes - chunk.nbytes
            if offsets[stop] - offsets[start] > room:
                # The most lines from `start` that fit in the room left.
                stop = start + int(np.searchsorted(offsets[start:stop + 1] - offsets[start], room, side="right")) - 1
                if stop == start:
                    if chunk.lines:
                        full.append(self._close())  # the next line does not fit: a new chunk for it
                        continue
                    stop = start + 1  # a line longer than max_bytes goes alone
            size = int(offsets[stop] - offsets[start])
            chunk.pieces.append(lines_buffer(lines.slice(start, stop - start)))
            chunk.lines += stop - start
            chunk.nbytes += size
            start = stop
            if chunk.lines >= self.batch_lines or chunk.nbytes >= self.max_bytes or start < n:
                full.append(self._close())
        return full

    def flush(self) -> Chunk | None:
        """The lines still waiting, as a last (smaller) chunk; None when there are none."""
        return self._close() if self._open.lines else None

    def _close(self) -> Chunk:
        chunk, self._open = self._open, Chunk()
        return chunk
