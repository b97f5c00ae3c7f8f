"""Cell text -> typed values: what each line-protocol type accepts, and bad cells found one by one."""

from __future__ import annotations

import pyarrow as pa
import pytest

from converter.encode import cells


def _run(function, texts):
    converted = function(pa.array([None if t is None else t.encode("utf-8") for t in texts], pa.binary()))
    bad = converted.bad.to_pylist() if converted.bad is not None else [False] * len(texts)
    return converted.values.to_pylist(), bad


@pytest.mark.parametrize(
    ("text", "value", "bad"),
    [
        ("1.5", 1.5, False),
        ("-0.25", -0.25, False),
        ("1e5", 100000.0, False),
        ("+2", 2.0, False),
        (".5", 0.5, False),
        ("7", 7.0, False),
        ("abc", None, True),
        ("1.2.3", None, True),
        (" 3", None, True),
        ("1,5", None, True),
        ("0x10", None, True),
        (None, None, False),
    ],
)
def test_float(text, value, bad):
    assert _run(cells.to_float, ["0", text]) == ([0.0, value], [False, bad])


@pytest.mark.parametrize("extra", [[], ["1.2.3"]])
def test_float_bad_cells_beside_nan_and_inf(extra):
    """Cells with a letter are set aside before the cast, but `nan` and `inf` have letters and
    are numbers; `1.2.3` has none and needs the full shape check (the second path)."""
    values, bad = _run(cells.to_float, ["nan", "x1", "-inf", "1.5", None, *extra])
    assert values[0] != values[0] and values[1:5] == [None, float("-inf"), 1.5, None]
    assert bad == [False, True, False, False, False] + [True] * len(extra)


def test_float_keeps_nan_and_inf_for_the_encoder_to_drop():
    values, bad = _run(cells.to_float, ["nan", "inf", "-Infinity", "NaN"])
    assert bad == [False] * 4
    assert [str(v) for v in values] == ["nan", "inf", "-inf", "nan"]


@pytest.mark.parametrize(
    ("text", "value", "bad"),
    [
        ("12", 12, False),
        ("-9223372036854775808", -(2**63), False),
        ("9223372036854775807", 2**63 - 1, False),
        ("9223372036854775808", None, True),  # overflow
        ("1.0", None, True),
        ("+12", None, True),
        ("1e3", None, True),
        ("", None, False),
    ],
)
def test_integer(text, value, bad):
    assert _run(cells.to_integer, [text or None]) == ([value], [bad])


@pytest.mark.parametrize(
    ("text", "value", "bad"),
    [("0", 0, False), ("18446744073709551615", 2**64 - 1, False), ("-1", None, True), ("18446744073709551616", None, True)],
)
def test_unsigned(text, value, bad):
    assert _run(cells.to_unsigned, [text]) == ([value], [bad])


@pytest.mark.parametrize(
    ("text", "value", "bad"),
    [
        ("true", True, False), ("TRUE", True, False), ("True", True, False), ("t", True, False), ("T", True, False),
        ("yes", True, False), ("1", True, False),
        ("false", False, False), ("FALSE", False, False), ("f", False, False), ("no", False, False), ("0", False, False),
        ("maybe", None, True), ("tRuE", None, True), ("2", None, True),
    ],
)
def test_boolean(text, value, bad):
    assert _run(cells.to_boolean, [text]) == ([value], [bad])


def test_text_marks_undecodable_bytes_only():
    converted = cells.to_text(pa.array([b"ok", b"caf\xc3\xa9", b"\xff\xfe", None]))
    assert converted.values.to_pylist() == ["ok", "café", None, None]
    assert converted.bad.to_pylist() == [False, False, True, False]


def test_many_bad_cells_in_a_big_column_are_each_found():
    texts = [str(i) if i % 7 else f"x{i}" for i in range(20_000)]
    values, bad = _run(cells.to_integer, texts)
    assert sum(bad) == len([i for i in range(20_000) if i % 7 == 0])
    assert values[1] == 1 and values[7] is None and values[19_998] == 19_998  # 19,999 = 7 x 2,857 is one of the bad cells


def test_looks_like_ignores_empty_cells_and_needs_one_value():
    assert cells.looks_like(pa.array([None, b"1.5", None]), "float")
    assert not cells.looks_like(pa.array([None, None], pa.binary()), "float")
    assert cells.looks_like(pa.array([b"true", None, b"F"]), "boolean")
    assert not cells.looks_like(pa.array([b"1.5", b"abc"]), "float")


def test_the_byte_scan_finds_exactly_the_cells_the_shape_refuses():
    import re

    from converter.encode.cells import FLOAT_SHAPE, INTEGER_SHAPE, _misfits_among_odd_cells

    cells = [b"x1", None, b"", b"1.5", b"NaN", b"-inf", b"4e5", b"1,5", None, b"7 ", b"", b"2", b"1e", b"nan!", b"9x"]
    for shape in (FLOAT_SHAPE, INTEGER_SHAPE):
        pattern = re.compile(shape.encode())
        # What the scan may leave to the cast: cells made only of number bytes (`1e` fails the cast itself).
        expected = [c is not None and not pattern.search(c) and not set(c) <= set(b"0123456789.eE+-") for c in cells]
        array = pa.array(cells, pa.binary())
        assert _misfits_among_odd_cells(array, shape).tolist() == expected
        assert _misfits_among_odd_cells(array.slice(2), shape).tolist() == expected[2:]  # offsets not from 0


@pytest.mark.parametrize(
    ("cells_", "same"),
    [
        ([b"true", b"true", b"true"], b"true"),
        ([b"true"], b"true"),
        ([b"true", b"True", b"true"], None),
        ([b"true", None, b"true"], None),
        ([b"true", b"tru", b"e"], None),  # the same bytes in all, cut differently
        ([b"", b""], None),
        ([], None),
    ],
)
def test_same_cell_everywhere(cells_, same):
    array = pa.array(cells_, pa.binary())
    assert cells.same_cell_everywhere(array) == same
    padded = pa.array([b"false", *cells_], pa.binary()).slice(1)  # offsets that do not start at 0
    assert cells.same_cell_everywhere(padded) == same
