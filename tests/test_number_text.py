"""Number cells written as Arrow writes their values pass through as text; the result is
always exactly what parsing and formatting every cell would give."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from converter.encode import cells
from converter.mapping import FieldType
from converter.encode.number_text import _parsed_and_formatted, _parsed_and_formatted_few, number_text, written_as_arrow_writes

FLOAT, INTEGER, UNSIGNED = FieldType.FLOAT, FieldType.INTEGER, FieldType.UNSIGNED

CONVERTERS = {FLOAT: cells.to_float, INTEGER: cells.to_integer, UNSIGNED: cells.to_unsigned}


def _binary(texts):
    return pa.array([None if t is None else t.encode() for t in texts], pa.binary())


def _mask(array, length):
    return [False] * length if array is None else pc.fill_null(array, False).to_pylist()


@pytest.mark.parametrize(
    ("kind", "passed", "not_passed"),
    [
        (FLOAT,
         ["42.7915", "-73.5", "0", "-0", "7", "0.5", "-0.25", "0.000001", "0.0000015", "0.00000123", "1234567890.5",
          "9999999999", "1.23456789012345", "12345.6789012345"],
         ["52.10", "5.", ".5", "-.5", "+1", "1e5", "1E-7", "0.0000001", "0.000000123", "12345678901", "10000000000.5",
          "1.234567890123456", "-0.0", "007", "00.5", "nan", "inf", "-Infinity", "1-", "--1", "1.2.3", "x", " 4",
          "4 ", "-", ".", "/", ""]),
        (INTEGER,
         ["12", "-7", "0", "170635808", "999999999999999999", "-999999999999999999"],
         ["007", "-0", "-05", "+5", "0x10", "1.0", "1e3", "9223372036854775807", "1-", "--1", "-", "", " 1"]),
        (UNSIGNED,
         ["12", "0", "9999999999999999999"],
         ["-7", "-0", "007", "+5", "1.0", "18446744073709551615", ""]),
    ],
)
def test_which_cells_pass_through(kind, passed, not_passed):
    for texts, expected in ((passed, True), (not_passed, False)):
        for text in texts:
            # The cell alone, and among others (offsets that do not start at 0, neighbours with and without points).
            for column, at in (([text], 0), (["1.5", text, "-2"], 1)):
                raw = _binary(column)
                assert bool(written_as_arrow_writes(raw, kind)[at]) is expected, (kind, text)
                assert bool(written_as_arrow_writes(raw.slice(at), kind)[0]) is expected, (kind, text)


def test_passed_cells_are_arrows_own_text():
    """Every cell the scan passes, in random columns of numbers and near-numbers, is exactly
    Arrow's formatting of its parsed value."""
    rng = random.Random(11)
    seen = {kind: 0 for kind in CONVERTERS}
    for _ in range(1500):
        texts = [_random_cell(rng) for _ in range(rng.randint(1, 10))]
        raw = _binary(texts)
        for kind, convert in CONVERTERS.items():
            expected = convert(raw).values.cast(pa.string()).to_pylist()
            for row in np.flatnonzero(written_as_arrow_writes(raw, kind)).tolist():
                seen[kind] += 1
                assert texts[row] == expected[row], (kind, texts[row])
    assert min(seen.values()) > 1000  # the columns held many cells of each kind that pass


@pytest.mark.parametrize("kind", [FLOAT, INTEGER, UNSIGNED])
def test_number_text_equals_parsing_and_formatting_every_cell(kind):
    """Whole columns: the text, the bad cells and the NaN/±Inf cells are those of the plain
    parse-and-format path, whether all, some or most cells pass through."""
    rng = random.Random(5)
    for _ in range(600):
        texts = [_random_cell(rng) for _ in range(rng.randint(1, 12))]
        for raw in (_binary(texts), _binary(texts).slice(1)):
            got, reference = number_text(raw, kind), _parsed_and_formatted(raw, kind)
            assert got.text.type == pa.string()
            got.text.validate(full=True)
            assert got.text.to_pylist() == reference.text.to_pylist(), (kind, raw.to_pylist())
            assert _mask(got.bad, len(raw)) == _mask(reference.bad, len(raw))
            assert _mask(got.non_finite, len(raw)) == _mask(reference.non_finite, len(raw))


@pytest.fixture
def parsed_lengths(monkeypatch):
    """The length of every column that number_text hands to a parser (Arrow's or the few-cells one)."""
    from converter.encode import number_text as module

    lengths = []
    for name in ("_parsed_and_formatted", "_parsed_and_formatted_few"):
        def counting(raw, kind, original=getattr(module, name)):
            lengths.append(len(raw))
            return original(raw, kind)

        monkeypatch.setattr(module, name, counting)
    return lengths


EDGE_CELLS = ["1e400", "-1e400", "1e-400", "+NaN", "-nan", "Infinity", "-INF", "00012.5000", "9" * 40,
              "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
              "18446744073709551615", "18446744073709551616", "+1", "-0", "1_0", "1e", "0x1p3", "١٢"]


@pytest.mark.parametrize("kind", [FLOAT, INTEGER, UNSIGNED])
def test_few_cells_are_read_by_python_exactly_as_by_arrow(kind):
    rng = random.Random(7)
    columns = [EDGE_CELLS] + [[c for c in (_random_cell(rng) for _ in range(20)) if c is not None] for _ in range(300)]
    for texts in columns:
        raw = _binary(texts)
        few, arrow = _parsed_and_formatted_few(raw, kind), _parsed_and_formatted(raw, kind)
        assert few.text.to_pylist() == arrow.text.to_pylist(), texts
        assert _mask(few.bad, len(raw)) == _mask(arrow.bad, len(raw)), texts
        assert _mask(few.non_finite, len(raw)) == _mask(arrow.non_finite, len(raw)), texts


def test_many_other_cells_are_parsed_by_arrow(parsed_lengths):
    from converter.encode.number_text import FEW_CELLS

    texts = ["52.10"] * (FEW_CELLS + 1) + ["1.5"] * 200
    assert number_text(_binary(texts), FLOAT).text.to_pylist() == ["52.1"] * (FEW_CELLS + 1) + ["1.5"] * 200
    assert parsed_lengths == [FEW_CELLS + 1]


def test_a_column_with_a_few_other_cells_parses_only_those(parsed_lengths):
    texts = ["42.5", "nan", "-73.25", "x", None, "1e5", "52.10"] + ["1.5"] * 20
    got = number_text(_binary(texts), FLOAT)
    assert parsed_lengths == [4]  # nan, x, 1e5, 52.10
    assert got.text.to_pylist()[:7] == ["42.5", None, "-73.25", None, None, "100000", "52.1"]
    assert _mask(got.bad, len(texts))[:4] == [False, False, False, True]
    assert _mask(got.non_finite, len(texts))[:2] == [False, True]


def test_bad_and_nan_cells_are_left_out_without_copying_the_column():
    """When every other cell is bad or NaN, the result keeps the column's bytes and only marks
    those cells null (a new validity bitmap), also in a slice whose offsets do not start at 0."""
    texts = ["-73.5", "x-1", None, "nan", "-0.25", "1-2"] + ["12.5"] * 10
    for raw in (_binary(texts), _binary(["0"] + texts).slice(1)):
        got = number_text(raw, FLOAT)
        got.text.validate(full=True)
        assert got.text.buffers()[2].address == raw.buffers()[2].address
        assert got.text.to_pylist()[:6] == ["-73.5", None, None, None, "-0.25", None]
        assert _mask(got.bad, len(raw))[:6] == [False, True, False, False, False, True]
        assert _mask(got.non_finite, len(raw))[:6] == [False, False, False, True, False, False]


def test_a_column_of_other_shapes_is_parsed_whole(parsed_lengths):
    texts = ["1e5", "2.50", "+3", "4"]
    assert number_text(_binary(texts), FLOAT).text.to_pylist() == ["100000", "2.5", "3", "4"]
    assert parsed_lengths == [4]  # one parse of the column, no take and no replace


def _random_cell(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.15:
        return rng.choice(["nan", "inf", "-inf", "1e5", "1E-7", "+3", " 4", "x", "", "-", ".", "5.", ".5", "--1",
                           "1-", "1.2.3", "0x10", "/", "-0", "-0.0", "007"])
    if roll < 0.45:
        alphabet = "0123456789" * 4 + ".-"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))
    value = rng.choice([rng.uniform(-100, 100), rng.uniform(-1e11, 1e11), rng.uniform(-1e-5, 1e-5),
                        rng.uniform(-1e-8, 1e-8), float(rng.randint(-10**19, 10**19))])
    return f"{value:.{rng.randint(0, 16)}f}" if rng.random() < 0.7 else repr(value)


def test_positions_outside_given_cells():
    from converter.encode.number_text import _outside

    offsets = np.array([3, 5, 5, 9, 12], dtype=np.int64)  # cells [3,5) [5,5) [5,9) [9,12)
    at = np.array([3, 4, 6, 8, 9, 11], dtype=np.int64)
    assert _outside(at, offsets, np.array([2], dtype=np.int64)).tolist() == [3, 4, 9, 11]
    assert _outside(at, offsets, np.array([0, 3], dtype=np.int64)).tolist() == [6, 8]
    assert _outside(at, offsets, np.zeros(0, dtype=np.int64)).tolist() == at.tolist()
