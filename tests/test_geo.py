"""converter.encode.geo: vectorized S2 tokens must equal the s2cell package's, row for row.

s2cell (pure Python, one point at a time) is the independent reference: every test
builds the expected column by calling ``s2cell.lat_lon_to_token`` per row.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
import s2cell
from hypothesis import given, settings
from hypothesis import strategies as st

from converter.encode.geo import MAX_LEVEL, s2_cell_dictionary, s2_cell_tokens
from support.data import SAMPLE

ALL_LEVELS = range(MAX_LEVEL + 1)

# 1 / sqrt(3) of the way up: latitude of the cube corners, where three faces meet.
CUBE_CORNER_LAT = math.degrees(math.atan(1 / math.sqrt(2)))

WELL_KNOWN_POINTS = [
    # (lat, lon, what it is)
    (0.0, 0.0, "null island, centre of face 0"),
    (90.0, 0.0, "north pole, centre of face 2"),
    (-90.0, 0.0, "south pole, centre of face 5"),
    (90.0, 180.0, "north pole seen from the antimeridian"),
    (-90.0, -123.4, "south pole at an arbitrary longitude"),
    (0.0, 180.0, "equator on the antimeridian, east side"),
    (0.0, -180.0, "equator on the antimeridian, west side"),
    (51.5, 180.0, "antimeridian north"),
    (-41.3, -180.0, "antimeridian south"),
    (0.0, 90.0, "centre of face 1"),
    (0.0, -90.0, "centre of face 4"),
    (0.0, 45.0, "edge between faces 0 and 1"),
    (0.0, -45.0, "edge between faces 0 and 4"),
    (0.0, 135.0, "edge between faces 1 and 3"),
    (0.0, -135.0, "edge between faces 3 and 4"),
    (45.0, 0.0, "edge between faces 0 and 2"),
    (-45.0, 90.0, "edge between faces 1 and 5"),
    (CUBE_CORNER_LAT, 45.0, "cube corner of faces 0, 1, 2"),
    (-CUBE_CORNER_LAT, -135.0, "cube corner of faces 3, 4, 5"),
    (-0.0, -0.0, "negative zeros"),
    (89.999999999, 0.000000001, "a hair from the north pole"),
    (1e-300, -1e-300, "subnormal-adjacent tiny values"),
    (42.7948286, -73.8600106, "Movebank fisher, Albany NY"),
    (-1.372912, -89.7402326, "Movebank Galapagos albatross"),
    (7.87054238968813, 38.79962389532289, "centre of InfluxData's sample cell 17b4854"),
]


def reference_tokens(lats: list, lons: list, level: int) -> list[str | None]:
    """The expected column: s2cell per row, null where the point is missing or impossible."""

    def usable(value: float | None, limit: float) -> bool:
        return value is not None and math.isfinite(value) and abs(value) <= limit

    return [
        s2cell.lat_lon_to_token(lat, lon, level) if usable(lat, 90) and usable(lon, 180) else None
        for lat, lon in zip(lats, lons)
    ]


def vectorized_tokens(lats: list, lons: list, level: int) -> list[str | None]:
    result = s2_cell_tokens(pa.array(lats, pa.float64()), pa.array(lons, pa.float64()), level)
    assert result.type == pa.string()
    assert len(result) == len(lats)
    return result.to_pylist()


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_well_known_points_match_s2cell_at_every_level(level: int) -> None:
    lats = [lat for lat, _, _ in WELL_KNOWN_POINTS]
    lons = [lon for _, lon, _ in WELL_KNOWN_POINTS]
    expected = reference_tokens(lats, lons, level)
    got = vectorized_tokens(lats, lons, level)
    mismatches = [(what, e, g) for (_, _, what), e, g in zip(WELL_KNOWN_POINTS, expected, got) if e != g]
    assert mismatches == []


@pytest.mark.parametrize(
    ("lat", "lon", "level", "token"),
    [
        (42.7948286, -73.8600106, 11, "89de6d4"),
        (-1.372912, -89.7402326, 11, "9007464"),
        (0.0, 0.0, 0, "1"),
        (90.0, 0.0, 0, "5"),
        (-90.0, 0.0, 0, "b"),
        (0.0, 0.0, 30, "1000000000000001"),
    ],
)
def test_pinned_tokens(lat: float, lon: float, level: int, token: str) -> None:
    assert vectorized_tokens([lat], [lon], level) == [token]
    assert s2cell.lat_lon_to_token(lat, lon, level) == token


def test_influxdata_sample_token_round_trips() -> None:
    # InfluxData's bird-migration sample (Movebank storks) tags points with level-11
    # tokens such as 17b4854: 7 hex digits. The cell's own centre must map back to it.
    lat, lon = s2cell.token_to_lat_lon("17b4854")
    assert vectorized_tokens([lat], [lon], 11) == ["17b4854"]


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_token_length_depends_only_on_level(level: int) -> None:
    # geo.py relies on this: the lowest set bit of a level-L id is bit 60 - 2L.
    lats = [lat for lat, _, _ in WELL_KNOWN_POINTS]
    lons = [lon for _, lon, _ in WELL_KNOWN_POINTS]
    expected_len = 16 - (60 - 2 * level) // 4
    for token in vectorized_tokens(lats, lons, level):
        assert re.fullmatch(f"[0-9a-f]{{{expected_len}}}", token), token


@pytest.mark.parametrize(
    ("lat", "lon", "why"),
    [
        (None, 10.0, "lat null"),
        (10.0, None, "lon null"),
        (None, None, "both null"),
        (float("nan"), 10.0, "lat NaN"),
        (10.0, float("nan"), "lon NaN"),
        (float("inf"), 10.0, "lat +inf"),
        (10.0, float("-inf"), "lon -inf"),
        (90.0000001, 0.0, "lat above 90"),
        (-90.5, 0.0, "lat below -90"),
        (0.0, 180.0000001, "lon above 180"),
        (0.0, -181.0, "lon below -180"),
        (1e308, 1e308, "huge"),
    ],
)
def test_unusable_points_are_null_and_neighbours_unaffected(lat, lon, why: str) -> None:
    lats = [42.7948286, lat, -1.372912]
    lons = [-73.8600106, lon, -89.7402326]
    got = vectorized_tokens(lats, lons, 11)
    assert got == [s2cell.lat_lon_to_token(42.7948286, -73.8600106, 11), None,
                   s2cell.lat_lon_to_token(-1.372912, -89.7402326, 11)], why


def test_all_null_and_empty_inputs() -> None:
    assert vectorized_tokens([None, None], [None, 1.0], 9) == [None, None]
    assert vectorized_tokens([], [], 9) == []


def test_sliced_chunked_and_non_float64_inputs() -> None:
    lats = [None, 42.7948286, 0.0, float("nan"), -1.372912, 12.0]
    lons = [1.0, -73.8600106, 180.0, 3.0, -89.7402326, 13.0]
    expected = reference_tokens(lats, lons, 13)
    lat_arr, lon_arr = pa.array(lats), pa.array(lons)
    # A slice has a non-zero offset into its buffers (and into the validity bitmap).
    assert s2_cell_tokens(lat_arr.slice(1, 4), lon_arr.slice(1, 4), 13).to_pylist() == expected[1:5]
    chunked_lat = pa.chunked_array([lat_arr.slice(0, 2), lat_arr.slice(2)])
    assert s2_cell_tokens(chunked_lat, lon_arr, 13).to_pylist() == expected
    ints = pa.array([0, 45, -90, None], pa.int32())
    assert s2_cell_tokens(ints, ints, 5).to_pylist() == reference_tokens([0, 45, -90, None], [0, 45, -90, None], 5)
    float32 = pa.array([42.5], pa.float32())
    assert s2_cell_tokens(float32, float32, 20).to_pylist() == [s2cell.lat_lon_to_token(42.5, 42.5, 20)]


def test_dictionary_holds_each_cell_once_and_decodes_to_the_tokens() -> None:
    # A track: three fixes in one level-9 cell, one far away, a failed fix, then back.
    lats = [42.79, 42.7901, 42.7902, -1.37, None, 42.7903]
    lons = [-73.86, -73.8601, -73.8602, -89.74, None, -73.8603]
    result = s2_cell_dictionary(pa.array(lats), pa.array(lons), 9)
    assert result.dictionary.to_pylist() == [s2cell.lat_lon_to_token(42.79, -73.86, 9),
                                             s2cell.lat_lon_to_token(-1.37, -89.74, 9)]
    assert result.indices.to_pylist() == [0, 0, 0, 1, None, 0]
    assert result.cast(pa.string()).to_pylist() == reference_tokens(lats, lons, 9)


def test_numpy_integer_level_is_accepted() -> None:
    assert vectorized_tokens([1.0], [2.0], np.int64(11)) == [s2cell.lat_lon_to_token(1.0, 2.0, 11)]


@pytest.mark.parametrize("level", [-1, 31, 100, 9.0, 1.5, "9", None, True])
def test_bad_level_raises_value_error(level) -> None:
    with pytest.raises(ValueError, match=r"S2 level must be an integer from 0 to 30, got "):
        s2_cell_tokens(pa.array([1.0]), pa.array([2.0]), level)


def test_mismatched_lengths_raise_value_error() -> None:
    with pytest.raises(ValueError, match="lat and lon must have the same length, got 2 and 1"):
        s2_cell_tokens(pa.array([1.0, 2.0]), pa.array([2.0]), 9)


def test_non_numeric_input_raises_type_error() -> None:
    with pytest.raises(TypeError, match="lon must be a numeric Arrow array"):
        s2_cell_tokens(pa.array([1.0]), pa.array(["2.0"]), 9)


def test_real_movebank_sample_matches_s2cell() -> None:
    table = pa_csv.read_csv(SAMPLE)
    lat, lon = table.column("location-lat"), table.column("location-long")
    assert lat.null_count > 0, "the sample should include rows without a fix"
    for level in (9, 11, 30):
        got = s2_cell_tokens(lat, lon, level).to_pylist()
        assert got == reference_tokens(lat.to_pylist(), lon.to_pylist(), level)


# Mostly ordinary coordinates, sometimes a missing or impossible one.
latitudes = st.one_of(
    st.floats(-90, 90),
    st.sampled_from([None, float("nan"), float("inf"), -91.0, 90.0, -90.0, 0.0]),
)
longitudes = st.one_of(
    st.floats(-180, 180),
    st.sampled_from([None, float("nan"), float("-inf"), 180.5, 180.0, -180.0, 0.0]),
)


@settings(max_examples=300, deadline=None)
@given(points=st.lists(st.tuples(latitudes, longitudes), max_size=40), level=st.integers(0, MAX_LEVEL))
def test_vectorized_equals_s2cell_for_random_arrays(points: list, level: int) -> None:
    lats = [lat for lat, _ in points]
    lons = [lon for _, lon in points]
    assert vectorized_tokens(lats, lons, level) == reference_tokens(lats, lons, level)


def test_large_random_array_matches_s2cell_spot_checks() -> None:
    # Crosses several internal chunks; every 997th row is checked against s2cell.
    rng = np.random.default_rng(20240611)
    n = 200_003
    lat = rng.uniform(-90, 90, n)
    lon = rng.uniform(-180, 180, n)
    lat[::101] = np.nan
    got = s2_cell_tokens(pa.array(lat), pa.array(lon), 30)
    assert got.null_count == len(lat[::101])
    rows = range(0, n, 997)
    assert [got[r].as_py() for r in rows] == reference_tokens([lat[r] for r in rows], [lon[r] for r in rows], 30)


def _points_near_edges(level: int, rng: np.random.Generator) -> tuple[list[float], list[float]]:
    """Points a hair (1e-13 .. 3e-6 in s or t) to either side of level-`level` cell edges and of
    cube-face edges, on every face: where a float32 first pass cannot decide (geo.py) and the
    float64 math must."""
    def st_to_uv(s: np.ndarray) -> np.ndarray:  # the inverse of S2's quadratic projection
        return np.where(s >= 0.5, (4 * s * s - 1) / 3, (1 - 4 * (1 - s) ** 2) / 3)

    n = 600
    nudge = rng.choice([1e-13, 1e-10, 1e-8, 1e-7, 1e-6, 3e-6], n) * rng.choice([-1.0, 1.0], n)
    cell_edge = rng.integers(0, (1 << level) + 1, n) / (1 << level)
    free = rng.uniform(0, 1, n)
    on_s = rng.random(n) < 0.5
    s = np.clip(np.where(on_s, cell_edge + nudge, free), 0, 1)
    t = np.clip(np.where(on_s, free, cell_edge + nudge), 0, 1)
    u, v = st_to_uv(s), st_to_uv(t)
    face = rng.integers(0, 6, n)
    one = np.ones(n)
    # S2's face (u, v) -> (x, y, z); |u| or |v| a hair past 1 is a point of the next face.
    x = np.choose(face, [one, -u, -u, -one, v, v])
    y = np.choose(face, [u, one, -v, -v, -one, u])
    z = np.choose(face, [v, v, one, -u, -u, -one])
    lats = np.degrees(np.arctan2(z, np.hypot(x, y)))
    lons = np.degrees(np.arctan2(y, x))
    return lats.tolist(), lons.tolist()


@pytest.mark.parametrize("level", [0, 1, 5, 9, 11, 12, 13])
def test_points_a_hair_from_cell_and_face_edges_match_s2cell(level: int) -> None:
    lats, lons = _points_near_edges(level, np.random.default_rng(level))
    assert vectorized_tokens(lats, lons, level) == reference_tokens(lats, lons, level)


def test_dictionary_holds_each_cell_once_however_the_runs_fall():
    # Runs of one cell, a cell coming back after another, missing fixes between them.
    albany, galapagos = (42.7948286, -73.8600106), (-1.372912, -89.7402326)
    points = [albany, albany, None, galapagos, albany, None, None, albany, galapagos, galapagos]
    lats = [p[0] if p else None for p in points]
    lons = [p[1] if p else None for p in points]
    result = s2_cell_dictionary(pa.array(lats, pa.float64()), pa.array(lons, pa.float64()), 11)
    result.validate(full=True)
    assert sorted(result.dictionary.to_pylist()) == sorted(set(reference_tokens(lats, lons, 11)) - {None})
    assert result.cast(pa.string()).to_pylist() == reference_tokens(lats, lons, 11)
