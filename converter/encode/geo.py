"""Vectorized S2 cell tokens: whole Arrow arrays of lat/lon in, an Arrow array of tokens out.

InfluxDB's Flux ``experimental/geo`` package and Telegraf's ``processors.s2geo`` index
points by an ``s2_cell_id`` tag holding an S2 cell *token*: the 64-bit cell id in
lowercase hex with the trailing zeros stripped. This module computes those tokens with
numpy, a whole batch at a time, and returns exactly what the ``s2cell`` package's
``lat_lon_to_token(lat, lon, level)`` returns for each row.

Worked example (a Movebank fisher near Albany, NY, at level 11)::

    >>> import pyarrow as pa
    >>> s2_cell_tokens(pa.array([42.7948286, None]), pa.array([-73.8600106, 0.0]), 11).to_pylist()
    ['89de6d4', None]

    lat, lon (degrees)   42.7948286, -73.8600106
    unit vector x, y, z  0.2040, -0.7049, 0.6794: largest |component| is y, negative -> face 4
    face 4: u, v         z/y, -x/y = -0.9638, 0.2894   (cube coordinates in [-1, 1])
    s, t                 0.0137, 0.6834                (quadratic transform into [0, 1])
    i, j                 floor(2**30 * (s, t)) = 14663454, 733801447  (leaf cell on the face)
    Hilbert position     the leaf's 60-bit index along face 4's space-filling curve
    cell id at level 11  0b100 face | top 22 position bits | 1 marker bit | zeros
                         = 0x89de6d4000000000
    token                hex with trailing zeros stripped: '89de6d4' (7 characters)

A row is null in the result when its lat or lon is null, NaN, infinite, or out of range
(|lat| > 90, |lon| > 180): a missing fix has no cell, and the caller leaves the tag out.
"""

from __future__ import annotations

import numbers

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["MAX_LEVEL", "s2_cell_dictionary", "s2_cell_tokens"]

MAX_LEVEL = 30
"""Leaf cells: the deepest S2 level (a cell about 1 cm across)."""

# Rows per numpy pass. Each pass holds a dozen temporaries of this many 8-byte values,
# so a 64K-row chunk stays in L2 cache and memory stays flat however big the batch is.
_CHUNK_ROWS = 1 << 16

# Face -> which of (x, y, z) become u and v, and their signs. S2 orients the six cube
# faces so that the Hilbert curve runs on continuously from one face to the next:
#   face 0 (+x): u =  y/x, v =  z/x      face 3 (-x): u =  z/x, v =  y/x
#   face 1 (+y): u = -x/y, v =  z/y      face 4 (-y): u =  z/y, v = -x/y
#   face 2 (+z): u = -x/z, v = -y/z      face 5 (-z): u = -y/z, v = -x/z
_U_AXIS = np.array([1, 0, 0, 2, 2, 1], dtype=np.intp)
_V_AXIS = np.array([2, 2, 1, 1, 0, 0], dtype=np.intp)
_U_SIGN = np.array([1.0, -1.0, -1.0, 1.0, 1.0, -1.0])
_V_SIGN = np.array([1.0, 1.0, -1.0, 1.0, -1.0, -1.0])

_SWAP = 1  # orientation bit: the sub-curve has i and j exchanged
_INVERT = 2  # orientation bit: the sub-curve runs with both axes reversed
_LOOKUP_BITS = 4  # bits of i and of j consumed per table lookup


def _hilbert_lookup_table() -> np.ndarray:
    """The standard S2 table: (4 bits of i, 4 bits of j, orientation) -> (8 bits of position, new orientation).

    Index layout ``iiii jjjj oo``, value layout ``pppppppp oo``. Built once at import by
    walking the four quadrant levels of each 8-bit (i, j) block from the top down.
    """
    # Position (0..3) of quadrant (i_bit, j_bit) -> index i_bit*2 + j_bit, per orientation.
    ij_to_pos = (
        (0, 1, 3, 2),  # canonical: the curve's "U" opens towards +i
        (0, 3, 1, 2),  # i and j swapped
        (2, 3, 1, 0),  # both axes inverted
        (2, 1, 3, 0),  # swapped and inverted
    )
    # Entering quadrant 0 swaps the sub-curve, quadrant 3 swaps and inverts it.
    orientation_change = (_SWAP, 0, 0, _SWAP | _INVERT)
    table = np.zeros(1 << (2 * _LOOKUP_BITS + 2), dtype=np.int64)
    for start in range(4):
        for i in range(1 << _LOOKUP_BITS):
            for j in range(1 << _LOOKUP_BITS):
                orientation, pos = start, 0
                for bit in reversed(range(_LOOKUP_BITS)):
                    quadrant = ij_to_pos[orientation][(((i >> bit) & 1) << 1) | ((j >> bit) & 1)]
                    pos = (pos << 2) | quadrant
                    orientation ^= orientation_change[quadrant]
                table[(i << 6) | (j << 2) | start] = (pos << 2) | orientation
    return table


_LOOKUP_POS = _hilbert_lookup_table()

# Byte -> its two lowercase hex digits as ASCII, so one gather turns 8 bytes into 16 chars.
_HEX_PAIRS = np.frombuffer(b"".join(b"%02x" % b for b in range(256)), dtype=np.uint8).reshape(256, 2)


def s2_cell_tokens(lat: pa.Array | pa.ChunkedArray, lon: pa.Array | pa.ChunkedArray, level: int) -> pa.Array:
    """S2 cell token of the level-``level`` cell containing each (lat, lon) point, as a string array.

    ``lat`` and ``lon`` are numeric Arrow arrays (or chunked arrays, combined first) of
    the same length, in degrees; float64 is read zero-copy when it has no nulls, other
    numeric types are cast. The result has one token per row, e.g.
    ``'89de0ac'`` at level 11, or null where lat or lon is null, NaN, infinite or out of
    range. ``level`` is an int from 0 (one of six cube faces) to 30 (leaf cells).
    """
    return s2_cell_dictionary(lat, lon, level).cast(pa.string())


def s2_cell_dictionary(lat: pa.Array | pa.ChunkedArray, lon: pa.Array | pa.ChunkedArray,
                       level: int) -> pa.DictionaryArray:
    """The same tokens as `s2_cell_tokens`, dictionary-encoded: each distinct cell's token once.

    A tag column is dictionary-encoded anyway, and a track's consecutive fixes mostly share
    a cell, so the integer ids are deduplicated first and only the distinct ones become text.
    """
    _check_level(level)
    lat_np, lat_present = _degrees(lat, "lat")
    lon_np, lon_present = _degrees(lon, "lon")
    if len(lat_np) != len(lon_np):
        raise ValueError(f"lat and lon must have the same length, got {len(lat_np)} and {len(lon_np)}")

    # NaN fails both comparisons, so NaN/inf drop out here with the nulls.
    valid = (np.abs(lat_np) <= 90.0) & (np.abs(lon_np) <= 180.0)
    for present in (lat_present, lon_present):
        if present is not None:
            valid &= present
    valid_rows = np.flatnonzero(valid)  # integer indices: faster than a boolean mask, used three times
    n_valid = len(valid_rows)
    all_valid = n_valid == len(valid)
    if not all_valid:
        lat_np, lon_np = lat_np[valid_rows], lon_np[valid_rows]

    keys = np.empty(n_valid, dtype=np.uint64)
    for start in range(0, n_valid, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, n_valid)
        keys[start:stop] = _cell_keys(lat_np[start:stop], lon_np[start:stop], level)
    # Deduplicated by runs first: a track's consecutive fixes mostly share a cell, so hashing
    # one key per run instead of one per row saves most of the dictionary's cost; the cell ids
    # (the Hilbert curve) and tokens are then worked out for the distinct cells only.
    run_starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))) if n_valid else np.zeros(0, np.intp)
    distinct = pa.array(keys[run_starts], pa.uint64()).dictionary_encode()
    codes = np.repeat(distinct.indices.to_numpy(), np.diff(np.append(run_starts, n_valid)))
    if not all_valid:
        codes_per_row = np.zeros(len(valid), dtype=np.int32)
        codes_per_row[valid_rows] = codes
        codes = codes_per_row
    validity = None if all_valid else pa.py_buffer(np.packbits(valid, bitorder="little"))
    indices = pa.Array.from_buffers(pa.int32(), len(valid),
                                    [validity, pa.py_buffer(codes.astype(np.int32, copy=False))],
                                    null_count=len(valid) - n_valid)

    # Every cell id at one level has its lowest set bit in the same place (bit 60 - 2*level)
    # and only zeros below it, so every token at that level has the same length: 1 hex
    # digit at level 0, 7 at level 11, 16 at level 30. One length for the whole array lets
    # the tokens sit back to back in a (rows, length) byte matrix, with no per-row strip.
    token_len = 16 - (2 * (MAX_LEVEL - int(level))) // 4
    distinct_ids = _ids_of_keys(distinct.dictionary.to_numpy(), level)
    digits = np.ascontiguousarray(_hex_digits(distinct_ids, token_len)).reshape(-1)
    tokens = _string_array(digits, len(distinct_ids), token_len)
    return pa.DictionaryArray.from_arrays(indices, tokens, safe=False)  # the codes index `tokens` by construction


def _check_level(level: object) -> None:
    if isinstance(level, bool) or not isinstance(level, numbers.Integral) or not 0 <= level <= MAX_LEVEL:
        raise ValueError(
            f"S2 level must be an integer from 0 to {MAX_LEVEL}, got {level!r} "
            "(level 0 is one of six cube faces, 30 is about 1 cm; Telegraf's s2geo default is 9)"
        )


def _degrees(values: pa.Array | pa.ChunkedArray, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A float64 numpy view of a numeric Arrow array (zero-copy when it is float64; what lies under
    a null is undefined), and which values are present (None: all of them)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        raise TypeError(f"{name} must be a pyarrow Array, got {type(values).__name__}")
    kind = values.type
    if not (pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_decimal(kind)):
        raise TypeError(f"{name} must be a numeric Arrow array (degrees), got type {kind}")
    if kind != pa.float64():
        values = values.cast(pa.float64())
    numbers = np.frombuffer(values.buffers()[1], dtype=np.float64, count=len(values), offset=8 * values.offset)
    present = pc.is_valid(values).to_numpy(zero_copy_only=False) if values.null_count else None
    return numbers, present


def _cell_keys(lat: np.ndarray, lon: np.ndarray, level: int) -> np.ndarray:
    """One uint64 per point naming its level-``level`` cell: face << 60 | i << 30 | j, with i
    and j cut to ``level`` bits. Cheaper than the cell id (no Hilbert curve), and equal for two
    points exactly when their ids are."""
    if level <= _FIRST_PASS_MAX_LEVEL:
        face, i, j = _face_ij_float32_first(lat, lon, level)
    else:
        face, i, j = _face_ij(lat, lon)
    below = MAX_LEVEL - level
    return ((face.astype(np.uint64) << np.uint64(60)) | ((i >> below).astype(np.uint64) << np.uint64(30))
            | (j >> below).astype(np.uint64))


def _ids_of_keys(keys: np.ndarray, level: int) -> np.ndarray:
    """The S2 cell ids of `_cell_keys`' keys."""
    below = MAX_LEVEL - level
    cell_bits = np.uint64((1 << MAX_LEVEL) - 1)
    face = (keys >> np.uint64(60)).astype(np.int64)
    i = ((keys >> np.uint64(30)) & cell_bits).astype(np.int64) << below
    j = (keys & cell_bits).astype(np.int64) << below
    position = _hilbert_position(face, i, j, level)

    # Cell id layout: 3 face bits, 60 position bits, then a 1 bit marking the leaf level.
    # Cutting to `level` keeps the top 2*level position bits and moves the marker bit up
    # to bit 60 - 2*level, zeroing everything below it.
    leaf = (face.astype(np.uint64) << np.uint64(61)) | (position << np.uint64(1))
    marker = np.uint64(1) << np.uint64(2 * (MAX_LEVEL - level))
    return (leaf & ~(marker - np.uint64(1))) | marker


def _face_ij(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cube face and leaf cell (i, j) of each point: the S2 math in float64, step by step."""
    # Point on the unit sphere. np.radians/sin/cos give the same doubles as Python's math
    # module here, which is what makes leaf cells agree with s2cell bit for bit.
    lat_rad = np.radians(lat)
    lon_rad = np.radians(lon)
    cos_lat = np.cos(lat_rad)
    xyz = np.stack((cos_lat * np.cos(lon_rad), cos_lat * np.sin(lon_rad), np.sin(lat_rad)))

    # Face = axis of the largest |component|, +3 when that component is negative. argmax
    # keeps the first axis on an exact tie, as s2cell does (C++/Go S2 keep the last;
    # an exact tie between two float components practically never happens).
    rows = np.arange(xyz.shape[1])
    axis = np.argmax(np.abs(xyz), axis=0)
    denominator = xyz[axis, rows]
    face = axis + 3 * (denominator < 0)
    u = xyz[_U_AXIS[face], rows] / denominator * _U_SIGN[face]
    v = xyz[_V_AXIS[face], rows] / denominator * _V_SIGN[face]
    return face, _st_to_ij(_uv_to_st(u)), _st_to_ij(_uv_to_st(v))


# Up to this level a float32 first pass places most points (see _face_ij_float32_first); deeper
# cells are so small that most points would lie within its margin of an edge (level 12: 16 %).
_FIRST_PASS_MAX_LEVEL = 12
# How far (in s and t) a float32 result must lie from a cell edge to be trusted: six times a
# bound on its error (below), ~70 times the largest error measured over 2M random points
# (1.9e-7 in x, y, z; 1.5e-7 in s, t). tests/test_geo.py fails with 1e-7 here.
_FLOAT32_MARGIN = np.float32(1e-5)
_U_SIGN32 = _U_SIGN.astype(np.float32)
_V_SIGN32 = _V_SIGN.astype(np.float32)


def _face_ij_float32_first(lat: np.ndarray, lon: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same faces and cells (to ``level``) as `_face_ij`, at ~60 % of its cost.

    numpy's float64 sin and cos call libm once per value (~8 ns); its float32 ones are
    vectorized (~0.6 ns), and the trigonometry is a third of the float64 path. So every point
    is placed in float32 first, and only the points that lie too close to a face edge or a
    level-``level`` cell edge for float32 to decide (~8 % at level 11) go through the float64
    math. Why that is exact: the float32 x, y, z are within ~5e-7 of the true ones (the angle
    rounded to float32, ~1.2e-7; sin and cos within 4 ulp, ~2.4e-7, the bound numpy's vectorized
    float32 routines keep; one product), so u and v (a component over one of at least
    1/sqrt(3)) within ~2e-6, and s and t (slope at most 0.75) within ~1.6e-6; float64 is within
    ~1e-15. A point more than `_FLOAT32_MARGIN` (1e-5) from every cell edge in s and t therefore
    lands in the same face and cell both ways. Below ``level`` the returned i and j are zero:
    the cell id drops those bits anyway.
    """
    lat_rad = np.radians(lat).astype(np.float32)
    lon_rad = np.radians(lon).astype(np.float32)
    cos_lat = np.cos(lat_rad)
    xyz = np.empty((3, len(lat)), dtype=np.float32)
    np.multiply(cos_lat, np.cos(lon_rad), out=xyz[0])
    np.multiply(cos_lat, np.sin(lon_rad), out=xyz[1])
    np.sin(lat_rad, out=xyz[2])

    # A point near a face edge needs no test of its own: there |u| or |v| is near 1, s or t
    # near 0 or 1, which is a cell edge at every level. (float32 may pick the neighbouring face
    # there; the point is then just outside it, and so undecided as well.)
    size = np.abs(xyz)
    axis = (size[1] > size[0]).astype(np.intp)  # on an exact tie the first axis, as argmax
    axis[size[2] > np.maximum(size[0], size[1])] = 2
    rows = np.arange(len(lat))
    denominator = xyz[axis, rows]
    face = axis + 3 * (denominator < 0)

    cells_per_side = np.float32(1 << level)
    margin = _FLOAT32_MARGIN * cells_per_side  # in cells
    undecided = np.zeros(len(lat), dtype=bool)
    ij = []
    for uv in (xyz[_U_AXIS[face], rows] / denominator * _U_SIGN32[face],
               xyz[_V_AXIS[face], rows] / denominator * _V_SIGN32[face]):
        in_cells = _uv_to_st(uv) * cells_per_side
        cell = np.floor(in_cells)
        offset = in_cells - cell  # where the point lies inside its cell, 0..1
        undecided |= (offset < margin) | (offset > 1 - margin)
        ij.append(np.clip(cell, 0, (1 << level) - 1).astype(np.int64) << (MAX_LEVEL - level))
    i, j = ij

    redo = np.flatnonzero(undecided)
    if redo.size:
        face[redo], i[redo], j[redo] = _face_ij(lat[redo], lon[redo])
    return face, i, j


def _uv_to_st(uv: np.ndarray) -> np.ndarray:
    # S2's quadratic projection evens out cell areas between a face's centre and its edges.
    # For uv < 0 the formula 1 - 0.5*sqrt(1 - 3uv) equals 1 - 0.5*sqrt(1 + 3|uv|) exactly, so
    # one sqrt of a never-negative argument serves both branches (no NaN, no warning).
    root = 0.5 * np.sqrt(1.0 + 3.0 * np.abs(uv))
    return np.where(uv >= 0.0, root, 1.0 - root)


def _st_to_ij(st: np.ndarray) -> np.ndarray:
    # Multiplying by 2**30 is exact, so floor() picks the leaf column exactly as the
    # reference does; clip keeps st == 1.0 (the face's far edge) on the face.
    return np.clip(np.floor(st * float(1 << MAX_LEVEL)), 0, (1 << MAX_LEVEL) - 1).astype(np.int64)


def _hilbert_position(face: np.ndarray, i: np.ndarray, j: np.ndarray, level: int) -> np.ndarray:
    """60-bit position along the face's Hilbert curve of the leaf cell (i, j), as uint64.

    The curve is walked 4 levels at a time, from the top: each lookup maps 4 bits of i,
    4 bits of j and the current orientation to 8 bits of position and the orientation of
    the next block. Eight lookups cover 30 levels (the first one only has 2 bits each).
    The loop runs over those 8 blocks for all rows at once, never over rows.

    Blocks below ``level`` would be zeroed when the id is cut to ``level``, so they are
    skipped: level 11 needs 4 lookups, not 8.
    """
    orientation = face & _SWAP  # odd faces start with i and j swapped
    position = np.zeros(len(face), dtype=np.uint64)
    blocks_needed = (level + 2 + _LOOKUP_BITS - 1) // _LOOKUP_BITS  # the top block holds 2 levels
    for block in range(7, 7 - blocks_needed, -1):
        shift = block * _LOOKUP_BITS
        index = (((i >> shift) & 15) << 6) | (((j >> shift) & 15) << 2) | orientation
        looked_up = _LOOKUP_POS[index]
        position |= (looked_up >> 2).astype(np.uint64) << np.uint64(2 * shift)
        orientation = looked_up & 3
    return position


def _hex_digits(ids: np.ndarray, token_len: int) -> np.ndarray:
    """(rows, token_len) ASCII bytes: the first token_len hex digits of each uint64 id."""
    # Big-endian bytes put the most significant digit first; one table gather per byte
    # yields two ASCII digits. Only the bytes that reach into the token are converted.
    n_bytes = (token_len + 1) // 2
    big_endian = ids.astype(">u8").view(np.uint8).reshape(-1, 8)[:, :n_bytes]
    return _HEX_PAIRS[big_endian].reshape(-1, 2 * n_bytes)[:, :token_len]


def _string_array(data: np.ndarray, n_rows: int, token_len: int) -> pa.Array:
    """Assemble the Arrow string array from the token bytes back to back, each ``token_len`` long."""
    # 32-bit offsets hold 2 GiB of text (134M level-30 tokens); beyond that use large_string.
    kind = pa.string() if n_rows * token_len <= np.iinfo(np.int32).max else pa.large_string()
    offsets = np.arange(n_rows + 1, dtype=np.int32 if kind == pa.string() else np.int64) * token_len
    return pa.Array.from_buffers(kind, n_rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
