"""Undecodable bytes through Arrow's CSV reader without losing the file (see the comment below)."""

from __future__ import annotations

import codecs
import re
import struct

import pyarrow as pa

from .streams import ReadByRead

# pyarrow decodes the text of a row it cannot split as strict UTF-8 before it calls
# `invalid_row_handler`; a ragged row holding a byte that is not UTF-8 makes that decoding
# fail and stops the whole file (pyarrow 26, _csv.pyx `_handle_invalid_row`). So, in chunks
# that are not valid UTF-8 (and only there), each such byte 0xXY travels through Arrow as the
# private-use character U+10FFXY, and is turned back into the same byte in the cells of each
# batch and in the text of each invalid row. Cells keep their exact bytes, so the encoder
# still rejects them as invalid UTF-8. (A genuine U+10FF80..U+10FFFF in such a chunk would
# come back as a raw byte: that plane is private use and unheard of in CSV exports.)
_STAND_IN_BASE = 0x10FF00
_TO_STAND_IN = {0xDC00 + b: _STAND_IN_BASE + b for b in range(0x80, 0x100)}
FROM_STAND_IN_TEXT = {v: k for k, v in _TO_STAND_IN.items()}  # to surrogateescape's U+DCXY
_STAND_IN_LEAD = chr(_STAND_IN_BASE + 0x80).encode()[:2]  # every stand-in starts with these bytes
_STAND_IN_BYTES = re.compile(b"\xf4\x8f[\xbe\xbf][\x80-\xbf]")


class Utf8Guard(ReadByRead):
    """Passes valid UTF-8 through untouched; swaps undecodable bytes for stand-ins (see above).

    `read(n)` returns n bytes unless the input ends first, as Arrow's reader wants whole blocks:
    from a file that is the very bytes object the file gave (no copy); pieces of short reads
    (a pipe, a decompressor) are joined."""

    def __init__(self, raw) -> None:
        self._raw = raw
        self._carry = b""  # an incomplete character at the end of the last chunk
        self._out = b""
        self.swapped = False
        self.last_byte = b""  # the last byte handed out: the input's last once it is read to its end

    def at_end(self) -> bool:
        """True when nothing is left to read (reads ahead, keeps what it read)."""
        return not self._out and not self._fill(1 << 16)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        pieces: list[bytes] = []
        wanted = size
        while wanted > 0 and (self._out or self._fill(wanted)):
            piece, self._out = (self._out, b"") if len(self._out) <= wanted else \
                (self._out[:wanted], self._out[wanted:])
            pieces.append(piece)
            wanted -= len(piece)
        if pieces:
            self.last_byte = pieces[-1][-1:]
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _fill(self, size: int) -> bool:
        """Read on until there are bytes to hand out; False at the end of the input."""
        while not self._out:
            chunk = self._raw.read(size)
            final = not chunk
            data = self._carry + (chunk or b"")
            if not data:
                return False
            self._out, self._carry = self._guard(data, final)
        return True

    def _guard(self, data: bytes, final: bool) -> tuple[bytes, bytes]:
        if data.isascii():
            return data, b""
        cut = len(data) if final else _without_incomplete_tail(data)
        head = data if cut == len(data) else data[:cut]
        if _is_utf8(head):
            return head, data[cut:]
        text, used = codecs.utf_8_decode(data, "surrogateescape", final)
        self.swapped = True
        return text.translate(_TO_STAND_IN).encode("utf-8"), data[used:]


def _is_utf8(data: bytes) -> bool:
    """Arrow's SIMD UTF-8 check, ten times faster than decoding the chunk in Python."""
    text = pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(struct.pack("<ii", 0, len(data))),
                                                  pa.py_buffer(data)])
    try:
        text.validate(full=True)
        return True
    except pa.ArrowInvalid:
        return False


def _without_incomplete_tail(data: bytes) -> int:
    """Length of `data` without a multi-byte character cut off at its end (it comes with the next chunk)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:  # the lead byte of the last character
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) - back if needed > back else len(data)
    return len(data)


def restore_cells(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Give back the original bytes of cells that went through Arrow as stand-ins."""
    columns = list(batch.columns)
    changed = False
    for i, column in enumerate(columns):
        data = column.buffers()[2]
        if data is None or data.to_pybytes().find(_STAND_IN_LEAD) < 0:
            continue
        cells = column.to_pylist()
        columns[i] = pa.array([None if c is None else _STAND_IN_BYTES.sub(_original_byte, c) for c in cells],
                              pa.binary())
        changed = True
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema) if changed else batch


def _original_byte(match: re.Match) -> bytes:
    return bytes([ord(match.group().decode("utf-8")) - _STAND_IN_BASE])
