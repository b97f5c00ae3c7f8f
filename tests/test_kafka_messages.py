"""converter/sinks/kafka/messages.py: a line's series, and blocks cut into messages of one series each.

No broker here: the series key and the cut are pure functions of the lines. The table
pins every escape shape a key can have; the property test compares the vectorized cut
with a per-line reference (a regex that walks the escapes) on random blocks.
"""

from __future__ import annotations

import re
import textwrap
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from converter.sinks.kafka import LineTooLong, message_views, messages_of, series_codes, series_key_ends


def reference_key(line: bytes) -> bytes:
    """The line up to its first space that no backslash escapes (the grammar's reading)."""
    return re.match(rb"(?:[^ \\]|\\.)*", line).group(0)


def keys_of(lines: pa.Array) -> list[bytes]:
    data = lines.buffers()[2].to_pybytes()
    starts = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:lines.offset + len(lines)]
    return [data[start:end] for start, end in zip(starts.tolist(), series_key_ends(lines).tolist())]


def block(text: str) -> pa.Array:
    return pa.array([line + "\n" for line in textwrap.dedent(text).strip("\n").splitlines()], pa.string())


@pytest.mark.parametrize(("line", "key"), [
    ("m f=1 1", "m"),  # no tags, a one-byte key (inline in Arrow's view)
    ("m,t=a f=1 1", "m,t=a"),
    ("m,t=a f=1", "m,t=a"),  # no timestamp
    (r"my\ measurement,t=a f=1 1", r"my\ measurement,t=a"),  # escaped space in the measurement
    (r"m,t=a\ b,u=c f=1 1", r"m,t=a\ b,u=c"),  # ... in a tag value
    (r"m,t\ k=a f=1 1", r"m,t\ k=a"),  # ... in a tag key
    (r"m,t=a\,b\=c f=1 1", r"m,t=a\,b\=c"),  # escaped comma and equals: no space, no matter
    ('m,t=a f="a b c",g=2i 1', "m,t=a"),  # spaces in a string field come after the key
    ('m,t=a s="x\\ y" 1', "m,t=a"),  # a backslash-space inside a string field, after the key
    ("movebank,individual=F1,study=Martes\\ pennanti\\ LaPoint\\ New\\ York,tag=1072 lat=42.79 1",
     "movebank,individual=F1,study=Martes\\ pennanti\\ LaPoint\\ New\\ York,tag=1072"),  # long: in the buffer
    ("m,t=é\\ ü f=1 1", "m,t=é\\ ü"),  # UTF-8 in a tag value
    ("123456789012 f=1", "123456789012"),  # exactly 12 bytes: the longest inline key
    ("1234567890123 f=1", "1234567890123"),  # 13 bytes: the shortest in the buffer
])
def test_the_series_key_is_the_line_up_to_its_first_unescaped_space(line, key):
    lines = pa.array([line + "\n"], pa.string())
    assert keys_of(lines) == [key.encode()] == [reference_key(line.encode())]


def test_equal_series_get_equal_codes_in_order_of_first_appearance():
    lines = block(r"""
        m f=1 1
        m,t=a\ b f=1 2
        mm,t=a f="x y" 3
        m f=2 4
        123456789012,t=x f=1 5
        123456789012,t=y f=1 6
        m,t=a\ b f=2 7
        123456789012,t=x f=2 8
    """)
    assert series_codes(lines).tolist() == [0, 1, 2, 0, 3, 4, 1, 3]


def test_keys_with_a_common_12_byte_prefix_or_of_different_length_differ():
    lines = block("""
        abcdefghijklmn,t=1 f=1
        abcdefghijklmn,t=2 f=1
        abcdefghijkl f=1
        abcdefghijklm f=1
        abcdefghijklmn,t=1 f=2
    """)
    assert series_codes(lines).tolist() == [0, 1, 2, 3, 0]


def test_a_slice_of_a_block_reads_its_own_lines():
    lines = block("""
        a,t=1 f=1
        b,t=2 f=1
        c,t=3 f=1
        b,t=2 f=2
    """).slice(1, 3)
    assert keys_of(lines) == [b"b,t=2", b"c,t=3", b"b,t=2"]
    assert [(m.key, m.value, m.lines) for m in messages_of(lines, max_lines=10, max_bytes=1000)] == [
        (b"b,t=2", b"b,t=2 f=1\nb,t=2 f=2\n", 2), (b"c,t=3", b"c,t=3 f=1\n", 1)]


def test_each_series_in_file_order_and_series_in_order_of_first_appearance():
    lines = block("""
        b,t=1 f=1 1
        a,t=1 f=1 2
        b,t=1 f=2 3
        a,t=1 f=2 4
        b,t=1 f=3 5
    """)
    assert [(m.key, m.value) for m in messages_of(lines, max_lines=1000, max_bytes=10_000)] == [
        (b"b,t=1", b"b,t=1 f=1 1\nb,t=1 f=2 3\nb,t=1 f=3 5\n"),
        (b"a,t=1", b"a,t=1 f=1 2\na,t=1 f=2 4\n"),
    ]


def test_a_series_is_cut_at_max_lines():
    lines = pa.array([f"m,t=a f={i} {i}\n" for i in range(7)], pa.string())
    assert [m.lines for m in messages_of(lines, max_lines=3, max_bytes=10_000)] == [3, 3, 1]


def test_a_series_is_cut_where_value_and_key_fit_in_max_bytes():
    lines = pa.array([f"m,t=a f={i} {i}\n" for i in range(10)], pa.string())  # 14 bytes each, key 5 bytes
    messages = list(messages_of(lines, max_lines=1000, max_bytes=5 + 3 * 14))
    assert [m.lines for m in messages] == [3, 3, 3, 1]
    assert all(len(m.value) + len(m.key) <= 5 + 3 * 14 for m in messages)
    assert b"".join(m.value for m in messages) == b"".join(line.as_py().encode() for line in lines)


def test_a_line_that_fits_no_message_is_refused_with_its_size():
    lines = pa.array(["m,t=a f=1 1\n", "m,t=a s=\"" + "x" * 100 + "\" 2\n"], pa.string())
    with pytest.raises(LineTooLong) as raised:
        list(messages_of(lines, max_lines=1000, max_bytes=60))
    assert raised.value.nbytes == 5 + 113 and raised.value.max_bytes == 60
    assert "a line of 118 bytes (with its series as the key) does not fit in one Kafka message of at most 60 " \
           "bytes" in str(raised.value)


def test_message_views_are_the_messages_as_slices_of_the_lines_buffer_not_copies():
    lines = block("""
        b,t=1 f=1 1
        a,t=1 f=1 2
        b,t=1 f=2 3
    """).slice(1)
    views = list(message_views(lines, max_lines=1000, max_bytes=10_000))
    assert [(key, value.to_pybytes(), count) for key, value, count in views] == \
        [(m.key, m.value, m.lines) for m in messages_of(lines, max_lines=1000, max_bytes=10_000)]
    data = lines.buffers()[2]
    assert all(data.address <= value.address < data.address + data.size for _, value, _ in views)


def test_an_empty_block_makes_no_message():
    assert list(messages_of(pa.array([], pa.string()), max_lines=10, max_bytes=100)) == []


# -- the vectorized cut against a per-line reference ---------------------------------------------

_NAMES = st.sampled_from(["m", "cpu", r"my\ m", "123456789012", "abcdefghijklmn", "é"])
_TAGS = st.lists(st.sampled_from([r"t=a", r"t=a\ b", r"host=x\,y", r"k\ ey=v", "z=1"]), max_size=3, unique=True)
_FIELDS = st.sampled_from(["f=1", 'f="a b"', 'f="x\\\\ y",g=2i', "value=1.5"])


@st.composite
def lines_of_series(draw) -> list[str]:
    series = draw(st.lists(st.tuples(_NAMES, _TAGS), min_size=1, max_size=6))
    keys = [",".join([name, *tags]) for name, tags in series]
    picks = draw(st.lists(st.integers(0, len(keys) - 1), min_size=1, max_size=120))
    return [f"{keys[p]} {draw(_FIELDS)} {n}\n" for n, p in enumerate(picks)]


@settings(max_examples=200, deadline=None)
@given(lines_of_series(), st.integers(1, 7), st.integers(0, 400), st.integers(0, 5))
def test_messages_hold_every_line_once_each_series_in_order(lines, max_lines, extra_bytes, start):
    start = min(start, len(lines) - 1)
    array = pa.array(lines, pa.string()).slice(start)
    expected = lines[start:]
    longest = max(len(reference_key(line.encode())) + len(line.encode()) for line in expected)
    max_bytes = longest + extra_bytes
    by_series: dict[bytes, list[bytes]] = defaultdict(list)
    for message in messages_of(array, max_lines=max_lines, max_bytes=max_bytes):
        got = message.value.splitlines(keepends=True)
        assert len(got) == message.lines <= max_lines
        assert len(message.value) + len(message.key) <= max_bytes
        assert {reference_key(line) for line in got} == {message.key}
        by_series[message.key] += got
    want: dict[bytes, list[bytes]] = defaultdict(list)
    for line in expected:
        want[reference_key(line.encode())].append(line.encode())
    assert by_series == want
    assert list(by_series) == list(want)  # series in order of first appearance
