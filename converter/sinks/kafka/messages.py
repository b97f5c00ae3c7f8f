"""Kafka messages of whole lines, one series per message, cut from a block of lines with Arrow and numpy.

A line's series is its measurement and tag set: the line up to its first unescaped space.
Our encoder escapes every space in a measurement, tag key or tag value with a backslash
and refuses names with a backslash before a space or at their end (escape.py), so "the
first space not after a backslash" is exact, and it is found for the whole block at once:

    movebank,individual=F1,study=Martes\\ pennanti lat=42.79,lon=-73.85 1233446501000000000\\n
    ^ start                               ^ escaped  ^ the end of the series key

- `series_key_ends`: every space of the block's bytes, minus those after a backslash; for
  each line the first one at or after its start (one `searchsorted`).
- `series_codes`: the keys as an Arrow binary-view array over the lines' own buffer (no
  copy of a key, 16 bytes per line), dictionary-encoded: equal series, equal codes.
- `series_of_strings`: the same from the encoder's own series (the pipeline hands them over
  with the lines when it has them): no scan of the bytes at all.
- `messages_of`: a stable sort of the codes brings each series' lines together in file
  order; each run is cut into messages of at most `max_lines` lines and `max_bytes` bytes
  (value and key together). Python runs once per message, never per line.
  `message_views`: the same messages, each value a slice of the lines' buffer (no copy).

The message key is the series itself, so every line of a series goes to one partition,
in file order: copies of a point (same series and time) are read back in the order they
were written, and InfluxDB keeps the last one, as if they had been written one by one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...arrow_buffers import bytes_of, offsets_of

_SPACE, _BACKSLASH = 32, 92
# Arrow's binary view: a 16-byte struct per value: int32 length, then either the value itself
# (length <= 12) or a 4-byte prefix, an int32 buffer index and an int32 offset into that buffer.
_INLINE_BYTES = 12


@dataclass(frozen=True)
class Message:
    """One Kafka message: the series as its key, whole lines (each ending in a newline) as its value."""

    key: bytes
    value: bytes
    lines: int


class LineTooLong(ValueError):
    """A single line (with its key) is larger than a message may be."""

    def __init__(self, nbytes: int, max_bytes: int) -> None:
        super().__init__(f"a line of {nbytes:,} bytes (with its series as the key) does not fit in one Kafka "
                         f"message of at most {max_bytes:,} bytes")
        self.nbytes = nbytes
        self.max_bytes = max_bytes


def series_key_ends(lines: pa.Array) -> np.ndarray:
    """Where each line's series key ends: the position of its first unescaped space in the data
    buffer (the line's end if it has none, which no line of ours lacks)."""
    offsets = offsets_of(lines).astype(np.int64)
    if len(lines) == 0:
        return np.zeros(0, dtype=np.int64)
    first, last = int(offsets[0]), int(offsets[-1])
    data = bytes_of(lines)[first:last]
    spaces = np.flatnonzero(data == _SPACE)
    if spaces.size:
        escaped = np.zeros(spaces.size, dtype=bool)
        after = spaces > 0
        escaped[after] = data[spaces[after] - 1] == _BACKSLASH
        spaces = spaces[~escaped]
    spaces = np.append(spaces + first, last)  # a line without a space: its key is all of it
    ends = spaces[np.searchsorted(spaces, offsets[:-1])]
    return np.minimum(ends, offsets[1:])


def series_codes(lines: pa.Array, key_ends: np.ndarray | None = None) -> np.ndarray:
    """A code per line, equal for lines of the same series, numbered in order of first appearance."""
    n = len(lines)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ends = series_key_ends(lines) if key_ends is None else key_ends
    starts = offsets_of(lines)[:-1].astype(np.int64)
    lengths = ends - starts
    data = bytes_of(lines)
    views = np.zeros((n, 16), dtype=np.uint8)
    views[:, 0:4] = lengths.astype("<i4").view(np.uint8).reshape(n, 4)
    # The first 12 bytes of every key (zero past its end): inline values whole, the others' prefix.
    for j in range(_INLINE_BYTES):
        inside = lengths > j
        views[inside, 4 + j] = data[starts[inside] + j]
    long = lengths > _INLINE_BYTES
    if long.any():
        views[long, 8:12] = 0  # buffer index 0: the lines' data buffer
        views[long, 12:16] = starts[long].astype("<i4").view(np.uint8).reshape(-1, 4)
    keys = pa.Array.from_buffers(pa.binary_view(), n, [None, pa.py_buffer(views), lines.buffers()[2]])
    return pc.dictionary_encode(keys).indices.to_numpy(zero_copy_only=False).astype(np.int64)


def series_of_lines(lines: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(code, key length) of every line, found in the lines' bytes (when the encoder's are not at hand)."""
    ends = series_key_ends(lines)
    return series_codes(lines, ends), ends - offsets_of(lines)[:-1].astype(np.int64)


def series_of_strings(codes: np.ndarray, strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(code, key length) of every line from the encoder's series: each line starts with strings[code]."""
    lengths = pc.fill_null(pc.binary_length(strings), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, lengths[codes]


def messages_of(lines: pa.Array, *, max_lines: int, max_bytes: int,
                series: tuple[np.ndarray, np.ndarray] | None = None) -> Iterator[Message]:
    """The block's lines as messages, one series per message, each series' lines in file order.
    `series`: (code, key length) per line (series_of_strings), else found in the bytes
    (series_of_lines). Raises LineTooLong for a line that fits no message."""
    for key, data, start, end, count in _cuts(lines, max_lines=max_lines, max_bytes=max_bytes, series=series):
        yield Message(key, data.slice(start, end - start).to_pybytes(), count)


def message_views(lines: pa.Array, *, max_lines: int, max_bytes: int,
                  series: tuple[np.ndarray, np.ndarray] | None = None) -> Iterator[tuple[bytes, pa.Buffer, int]]:
    """messages_of's messages as (key, value, lines) with each value a slice of the lines' own Arrow
    buffer, not a copy: what the sink hands to produce(), which copies the bytes into librdkafka's
    queue itself. A copy here too cost a malloc (an mmap: values are ~0.4 MB) and a memcpy per message."""
    for key, data, start, end, count in _cuts(lines, max_lines=max_lines, max_bytes=max_bytes, series=series):
        yield key, data.slice(start, end - start), count


def _cuts(lines: pa.Array, *, max_lines: int, max_bytes: int,
          series: tuple[np.ndarray, np.ndarray] | None) -> Iterator[tuple[bytes, pa.Buffer, int, int, int]]:
    """(key, the data buffer, start, end, lines) of each message: its value is data[start:end]."""
    if len(lines) == 0:
        return
    codes, key_lengths = series if series is not None else series_of_lines(lines)
    if codes.size > 1 and not np.all(codes[1:] >= codes[:-1]):
        order = np.argsort(codes, kind="stable")
        lines = lines.take(pa.array(order))
        codes, key_lengths = codes[order], key_lengths[order]
    offsets = offsets_of(lines).astype(np.int64)
    buffer = lines.buffers()[2]
    data = bytes_of(lines)
    bounds = np.flatnonzero(np.diff(codes)) + 1
    for start, stop in zip(np.concatenate(([0], bounds)).tolist(), np.concatenate((bounds, [len(lines)])).tolist()):
        key_length = int(key_lengths[start])
        first = int(offsets[start])
        key = data[first:first + key_length].tobytes()
        room = max_bytes - key_length
        while start < stop:
            end = min(stop, start + max_lines)
            if offsets[end] - offsets[start] > room:
                # The most lines from `start` whose bytes fit in the room.
                end = start + int(np.searchsorted(offsets[start:end + 1] - offsets[start], room, side="right")) - 1
                if end == start:
                    raise LineTooLong(int(offsets[start + 1] - offsets[start]) + key_length, max_bytes)
            yield key, buffer, int(offsets[start]), int(offsets[end]), end - start
            start = end
