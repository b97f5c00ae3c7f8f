"""A cap on how much a compressed input may expand: a decompression bomb stops in seconds.

Memory stays bounded however much a file decompresses to (the reader takes it in blocks),
but time does not: 1 MB of gzip holds 1 GiB of NUL bytes, a few KB of zstd terabytes, and
each byte is decompressed and parsed before anything can tell. CSV compresses about 10 times
(Movebank's files 3-13x with gzip and zstd -19); 200 times is far past any CSV seen and well
below what a bomb expands to (deflate's ceiling is ~1,030x, zstd's and bzip2's far higher).
The ratio is checked only after `CHECKED_AFTER` decompressed bytes, so that a small file of
one repeated row is never refused.
"""

from __future__ import annotations

from .header import size_text
from .streams import CountingReader, ReadByRead, StoppedByLimit

DEFAULT_MAX_EXPANSION = 200  # decompressed bytes per compressed byte; 0: no limit
CHECKED_AFTER = 32 << 20


class TooExpanded(StoppedByLimit):
    """The input decompressed past `max_expansion` times the compressed bytes read for it."""

    def __init__(self, decompressed: int, compressed: int, max_expansion: int) -> None:
        super().__init__(
            f"it decompresses to more than {max_expansion:,} times its size ({decompressed / (1 << 20):,.0f} MiB "
            f"from {size_text(compressed)}), which no CSV file of real data does: a decompression bomb, or the same "
            f"bytes over and over. Raise --max-expansion (0: no limit) if the file really is that compressible")
        self.decompressed = decompressed


class ExpansionLimit(ReadByRead):
    """The decompressed stream, counted against the compressed bytes `counter` has taken."""

    def __init__(self, raw, counter: CountingReader, max_expansion: int) -> None:
        self._raw = raw
        self._counter = counter
        self._max = max_expansion
        self._out = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._out += len(data)
        if self._max and self._out > CHECKED_AFTER and self._out > self._max * max(self._counter.count, 1):
            raise TooExpanded(self._out, self._counter.count, self._max)
        return data
