"""Every escaping rule of line protocol, pinned case by case (names scalar, values vectorized)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from converter.encode import escape
from converter.mapping import names
from converter.errors import MappingError


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("cpu", "cpu"),
        ("my measurement", "my\\ measurement"),
        ("a,b", "a\\,b"),
        ("a=b", "a=b"),  # '=' is not special in a measurement
        ('quote"d', 'quote"d'),
        ("back\\slash", "back\\slash"),  # a lone backslash before a plain character stays
        ("snow☃", "snow☃"),
    ],
)
def test_measurement_name(name, escaped):
    assert names.measurement_name(name, what="m") == escaped


@pytest.mark.parametrize(
    ("key", "escaped"),
    [
        ("host", "host"),
        ("tag key", "tag\\ key"),
        ("a,b", "a\\,b"),
        ("a=b", "a\\=b"),
        ("ECMWF ERA5 SL Wind (10 m above Ground U Component)", "ECMWF\\ ERA5\\ SL\\ Wind\\ (10\\ m\\ above\\ Ground\\ U\\ Component)"),
        ('say"what', 'say"what'),
        ("gps:hdop", "gps:hdop"),
        ("back\\slash", "back\\slash"),
    ],
)
def test_key_name(key, escaped):
    assert names.key_name(key, what="key") == escaped


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "is empty"),
        ("tab\there", "control character"),
        ("nul\x00", "control character"),
        ("del\x7f", "control character"),
        ("ends\\", "backslash at its end"),
        ("back\\,comma", "backslash at its end or before"),
        ("back\\ space", "backslash at its end or before"),
    ],
)
def test_unwritable_key_names_are_refused(name, message):
    with pytest.raises(MappingError, match=message):
        names.key_name(name, what="field key")


def test_measurement_cannot_start_a_comment():
    with pytest.raises(MappingError, match="starts with '#'"):
        names.measurement_name("#hash", what="--measurement")


def test_backslash_equals_is_fine_in_a_measurement_but_not_in_a_key():
    assert names.measurement_name("a\\=b", what="m") == "a\\=b"
    with pytest.raises(MappingError):
        names.key_name("a\\=b", what="k")


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain", "plain"),
        ("two words", "two\\ words"),
        ("a,b=c", "a\\,b\\=c"),
        ('"quoted"', '"quoted"'),
        ("x\\y", "x\\y"),
        ("Martes pennanti LaPoint New York", "Martes\\ pennanti\\ LaPoint\\ New\\ York"),
    ],
)
def test_tag_values_vectorized(value, escaped):
    assert escape.tag_values(pa.array([value, None])).to_pylist() == [escaped, None]


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain", "plain"),
        ('say "hi"', 'say \\"hi\\"'),
        ("C:\\path", "C:\\\\path"),
        ('\\"', '\\\\\\"'),  # backslash first, then the quote: never a double escape
        ("comma, space=equals", "comma, space=equals"),
        ("tab\tkept", "tab\tkept"),
    ],
)
def test_string_field_values_vectorized(value, escaped):
    assert escape.string_field_values(pa.array([value])).to_pylist() == [escaped]
    assert names.string_field_scalar(value) == '"' + escaped + '"'


def test_measurement_values_vectorized():
    assert escape.measurement_values(pa.array(["a b,c=d"])).to_pylist() == ["a\\ b\\,c=d"]


@pytest.mark.parametrize(
    ("value", "control", "ambiguous"),
    [
        ("ok", False, False),
        ("new\nline", True, False),
        ("bell\x07", True, False),
        ("ends\\", False, True),
        ("a\\,b", False, True),
        ("a\\=b", False, True),
        ("a\\ b", False, True),
        ("a\\b", False, False),
        ("a\\\\b", False, False),
    ],
)
def test_vectorized_checks(value, control, ambiguous):
    values = pa.array([value, None])
    assert escape.has_match(values, names.CONTROL_CHARS).to_pylist() == [control, False]
    assert escape.has_match(values, names.AMBIGUOUS_BACKSLASH_IN_KEY).to_pylist() == [ambiguous, False]


@pytest.mark.parametrize("pattern", [names.CONTROL_CHARS, names.LINE_BREAKS])
def test_the_byte_scan_before_a_class_regex_agrees_with_the_regex(pattern):
    import random
    import re

    rng = random.Random(3)
    alphabet = ["a", " ", "é", "\u2028", "\u0085", "\x7f", "\x00", "\x1f", "\n", "\r", "\t", "😀", "\\"]
    for _ in range(400):
        values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4))) if rng.random() > 0.1 else None
                  for _ in range(rng.randint(1, 5))]
        if rng.random() < 0.5:  # mostly clean columns, where the scan decides alone
            values = [v if v is None else re.sub(pattern, "", v) for v in values]
        array = pa.array(values, pa.string())
        expected = [v is not None and re.search(pattern, v) is not None for v in values]
        assert escape.has_match(array, pattern).to_pylist() == expected
        assert escape.has_match(array.slice(1), pattern).to_pylist() == expected[1:]
