"""Time cells -> exact integer timestamps in each precision, and the reason when they cannot be."""

from __future__ import annotations

import pyarrow as pa
import pytest

from converter.mapping import Precision
from converter.encode.timestamps import parse_times
from converter.encode.time_text import LP_MAX_NS, LP_MIN_NS


def _parse(texts, fmt="iso8601", timezone="UTC", precision=Precision.NS):
    parsed = parse_times(pa.array([None if t is None else t.encode() for t in texts], pa.binary()),
                         fmt=fmt, timezone=timezone, precision=precision)
    problems = {}
    for kind, mask in parsed.problems:
        for i, flag in enumerate(mask.to_pylist()):
            if flag:
                problems.setdefault(i, kind)
    return parsed.values.to_pylist(), [problems.get(i) for i in range(len(texts))]


MOVEBANK_NS = 1_297_445_400_000_000_000  # 2011-02-11 17:30:00 UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2011-02-11 17:30:00.000", MOVEBANK_NS),
        ("2011-02-11 17:30:00", MOVEBANK_NS),
        ("2011-02-11T17:30:00Z", MOVEBANK_NS),
        ("2011-02-11T19:30:00+02:00", MOVEBANK_NS),
        ("2011-02-11T12:30:00-0500", MOVEBANK_NS),
        ("2011-02-11 17:30:00.123456789", MOVEBANK_NS + 123_456_789),
        ("1970-01-01 00:00:00", 0),
        ("1969-12-31 23:59:59.999999999", -1),
        ("1677-09-21 00:12:43.145224194", LP_MIN_NS),
        ("1677-09-21 00:12:43.146", -9_223_372_036_854_000_000),
        ("2262-04-11 23:47:16.854775806", LP_MAX_NS),
    ],
)
def test_iso_times(text, expected):
    assert _parse([text]) == ([expected], [None])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (None, "empty"),
        ("yesterday", "unparseable"),
        ("2011-02-30 00:00:00", "unparseable"),
        ("2011-02-11 25:00:00", "unparseable"),
        ("2011-02-11 24:00:00", "unparseable"),
        ("2011-02-11 23:59:60", "unparseable"),
        ("2011-02-00 10:00:00", "unparseable"),
        ("2011-02-11T23:00:00+25:00", "unparseable"),
        ("2011-02-11T23:00:00+02:61", "unparseable"),
        ("1677-09-21 00:12:43.145224193", "out of range"),
        ("1600-01-01 00:00:00", "out of range"),
        ("3000-01-01 00:00:00", "out of range"),
        ("2262-04-11 23:47:16.854775807", "out of range"),  # int64 max is not a line-protocol time
    ],
)
def test_bad_iso_times(text, problem):
    assert _parse(["2011-02-11 17:30:00", text]) == ([MOVEBANK_NS, None], [None, problem])


@pytest.mark.parametrize("text", ["2011-02-30 00:00:00", "2011-02-11 24:00:00", "2011-02-11 23:59:60",
                                  "2011-02-00 10:00:00", "2011-00-10 10:00:00", "2011-02-11T23:00:00+25:00",
                                  "2011-02-11T23:00:00+02:61"])
@pytest.mark.parametrize("tz", [None, "UTC"])
def test_arrow_refuses_what_the_calendar_check_refuses(text, tz):
    """timestamps._arrow_cast_for_the_rest does not offer these to Arrow's cast one by one,
    because Arrow refuses them too: if a pyarrow upgrade starts accepting one, this fails."""
    with pytest.raises(pa.ArrowInvalid):
        pa.array([text]).cast(pa.timestamp("ns", tz))


@pytest.mark.parametrize(
    ("precision", "expected"),
    [(Precision.NS, [MOVEBANK_NS + 123_456_789, -1]), (Precision.US, [MOVEBANK_NS // 1000 + 123_456, -1]),
     (Precision.MS, [MOVEBANK_NS // 10**6 + 123, -1]), (Precision.S, [MOVEBANK_NS // 10**9, -1])],
)
def test_precision_floors_so_order_is_kept(precision, expected):
    values, _ = _parse(["2011-02-11 17:30:00.123456789", "1969-12-31 23:59:59.999999999"], precision=precision)
    assert values == expected


@pytest.mark.parametrize(
    ("fmt", "text", "expected", "problem"),
    [
        ("epoch_s", "1297445400", MOVEBANK_NS, None),
        ("epoch_ms", "1297445400000", MOVEBANK_NS, None),
        ("epoch_us", "1297445400000000", MOVEBANK_NS, None),
        ("epoch_ns", str(MOVEBANK_NS), MOVEBANK_NS, None),
        ("epoch_ns", str(LP_MIN_NS), LP_MIN_NS, None),
        ("epoch_ns", str(LP_MIN_NS - 1), None, "out of range"),
        ("epoch_s", "9223372037", None, "out of range"),
        ("epoch_s", "1297445400.5", None, "unparseable"),
        ("epoch_ms", "soon", None, "unparseable"),
    ],
)
def test_epoch_times(fmt, text, expected, problem):
    assert _parse([text], fmt=fmt) == ([expected], [problem])


def test_strptime_pattern():
    assert _parse(["11/02/2011 17:30", "31/02/2011 17:30"], fmt="%d/%m/%Y %H:%M") == (
        [MOVEBANK_NS, None], [None, "unparseable"])


def test_naive_times_in_a_zone_and_the_dst_gap():
    values, problems = _parse(["2011-02-11 12:30:00", "2011-03-13 02:30:00", "2011-02-11T17:30:00Z"],
                              timezone="America/New_York")
    assert values == [MOVEBANK_NS, None, MOVEBANK_NS]  # an explicit offset wins over --timezone
    assert problems == [None, "nonexistent or ambiguous local", None]


def test_strptime_with_an_offset_is_checked_in_its_own_local_time():
    values, problems = _parse(["Fri, 11 Feb 2011 10:30:00 -0700", "Mon, 31 Feb 2011 17:30:00 +0000"],
                              fmt="%a, %d %b %Y %H:%M:%S %z")
    assert values == [MOVEBANK_NS, None] and problems == [None, "unparseable"]


from datetime import datetime, timedelta, timezone  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(
    st.datetimes(min_value=datetime(1678, 1, 1), max_value=datetime(2261, 12, 31)),
    st.sampled_from(["", "Z", "+02:00", "-0530", "+14:00"]),
    st.sampled_from([" ", "T"]),
    st.integers(0, 9),
), min_size=1, max_size=20))
def test_batches_with_a_bad_cell_parse_every_good_cell_exactly(rows):
    """Batches with bad cells (the fast cast fails) take the bisection or the vectorized
    seconds+fraction parser; every good cell must still come out as Python's datetime says."""
    texts, expected = [], []
    for moment, zone, sep, digits in rows:
        fraction = f"{moment.microsecond:06d}{'000'}"[:digits]
        texts.append(moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (f".{fraction}" if digits else "") + zone)
        offset = {"": 0, "Z": 0, "+02:00": 120, "-0530": -330, "+14:00": 840}[zone]
        base = (moment.replace(microsecond=0) - timedelta(minutes=offset)).replace(tzinfo=timezone.utc)
        seconds = int((base - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds())
        expected.append(seconds * 10**9 + (int(fraction.ljust(9, "0")) if digits else 0))
    # One bad cell: bisection sends only it to the slow parser. Seventeen: more than the
    # bisection budget (16 for small batches), so every cell takes the slow parser.
    for bad in (1, 17):
        values, problems = _parse(texts + ["2011-02-30 25:61:00.000"] * bad)
        assert values[:-bad] == expected
        assert problems == [None] * len(texts) + ["unparseable"] * bad


@pytest.mark.parametrize("bad_cells", [1, 40, 1_000])
def test_only_the_cells_the_fast_cast_refuses_take_the_slow_parser(monkeypatch, bad_cells):
    """Counted, not timed: bad times in a large batch cost that many slow-path cells (the slow
    parser costs ~1 µs a cell against ~30 ns), however many there are."""
    from converter.encode import time_text, timestamps

    seen = []
    original = time_text._seconds_plus_fraction

    def counting(text, tz):
        seen.append(len(text))
        return original(text, tz)

    monkeypatch.setattr(timestamps, "_seconds_plus_fraction", counting)
    monkeypatch.setattr(time_text, "_seconds_plus_fraction", counting)
    texts = [f"2011-02-11 17:{i % 60:02d}:00.000" for i in range(30_000)] + ["yesterday"] * bad_cells
    values, problems = _parse(texts)
    assert seen == [bad_cells]
    assert values[:30_000] == [MOVEBANK_NS + (i % 60 - 30) * 60 * 10**9 for i in range(30_000)]
    assert problems.count("unparseable") == bad_cells and values[30_000:] == [None] * bad_cells


def _mutated_times(count: int, seed: int) -> list[str | None]:
    """ISO-looking cells with one or two bytes changed, dropped or added: near misses of every shape."""
    import random

    rng = random.Random(seed)
    alphabet = "0123456789-: T.Zz+x/"
    seeds = ["2011-02-11 17:30:00.000", "2011-02-11T17:30:00", "2000-02-29 23:59:59.123456789",
             "1900-02-29 00:00:00", "2261-12-31 23:59:59", "1678-01-01 00:00:00.5", "2011-02-11 17:30:00."]
    cells: list[str | None] = []
    for _ in range(count):
        chars = list(rng.choice(seeds))
        for _ in range(rng.randint(0, 2)):
            where = rng.randrange(len(chars) + 1)
            action = rng.random()
            if action < 0.4 and where < len(chars):
                chars[where] = rng.choice(alphabet)
            elif action < 0.7 and where < len(chars):
                del chars[where]
            else:
                chars.insert(where, rng.choice(alphabet))
        cells.append("".join(chars) if rng.random() > 0.02 else None)
    return cells


@pytest.mark.parametrize("one_length", [False, True], ids=["mixed lengths", "one length (strided path)"])
def test_cells_the_plain_iso_scan_reads_are_read_as_arrow_casts_them(one_length):
    from converter.encode.time_text import _plain_iso

    cells = _mutated_times(20_000, seed=5)
    if one_length:
        cells = [c for c in cells if c is not None and len(c) == 23]
    text = pa.array(cells, pa.string())
    plain = _plain_iso(text.slice(1))  # a slice: offsets that do not start at 0
    outcomes = plain.plain.astype(int) + plain.impossible + plain.suspects
    assert outcomes.tolist() == [int(c is not None) for c in cells[1:]]  # each cell has one outcome
    cleared = [c for c, p in zip(cells[1:], plain.plain) if p]
    assert len(cleared) > 300 and plain.suspects.sum() > 300 and plain.impossible.sum() > 10  # all occur
    for cell in (c for c, i in zip(cells[1:], plain.impossible) if i):
        with pytest.raises(pa.ArrowInvalid):
            pa.array([cell]).cast(pa.timestamp("ns"))
    # Arrow's cast accepts every cell the scan read, as the same time (it raises if it refuses one).
    assert pa.array(cleared, pa.string()).cast(pa.timestamp("ns")).cast(pa.int64()).to_pylist() == \
        plain.ns[plain.plain].tolist()
    for cell, suspect in zip(cells[1:], plain.suspects):
        if suspect and cell is not None:
            # What it sets aside is either refused by Arrow or not a plain naive time.
            try:
                pa.array([cell]).cast(pa.timestamp("ns"))
            except pa.ArrowInvalid:
                continue
            assert not (len(cell) in (19, *range(21, 30)) and cell[10] in " T" and cell[:4].isdigit()
                        and "1678" <= cell[:4] <= "2261" and cell[4] == "-" and cell[19:20] in ("", ".")
                        and cell.replace("-", "").replace(":", "").replace(" ", "").replace("T", "")
                        .replace(".", "").isdigit()), cell


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.datetimes(min_value=datetime(1678, 1, 1), max_value=datetime(2261, 12, 31)),
                          st.sampled_from([" ", "T"])), min_size=1, max_size=30),
       st.integers(0, 9))
def test_plain_iso_scan_reads_any_day_and_clock_as_arrow_does(moments, digits):
    """Every day of the safe years (leap days, centuries, 1678 and 2261), with 0-9 fraction digits."""
    from converter.encode.time_text import _plain_iso

    texts = [m.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (f".{m.microsecond:06d}000"[:digits + 1] if digits else "")
             for m, sep in moments]
    text = pa.array(texts, pa.string())
    plain = _plain_iso(text)
    assert plain.plain.all()
    assert plain.ns.tolist() == text.cast(pa.timestamp("ns")).cast(pa.int64()).to_pylist()


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_few_cells_are_read_by_python_exactly_as_by_arrow(monkeypatch, tz):
    # A batch with a few bad times parses them with Python's re; a big one with Arrow's regex.
    from converter.encode import time_text

    zoned = ["2011-02-11T17:30:00Z", "2011-02-11T19:30:00+02:00", "2011-02-11T12:30:00-0500", "2011-02-11T12:30-05:00",
             "2011-02-11 17:30:00.5+25:00", "0000-02-29 00:00:00", "9999-12-31T23:59:59.999999999-23:59",
             "2011-02-11", "2011-02-11T17:30", "2011-02-11 17:30:00\n", "２011-02-11 17:30:00", "1677-09-21 00:12:43.145"]
    cells = _mutated_times(3000, seed=11) + zoned + [z[:-1] + "x" for z in zoned]
    text = pa.array(cells, pa.string())
    monkeypatch.setattr(time_text, "FEW_CELLS", 0)
    by_arrow = time_text._seconds_plus_fraction(text, tz)
    monkeypatch.setattr(time_text, "FEW_CELLS", len(cells) + 1)
    by_python = time_text._seconds_plus_fraction(text, tz)
    assert by_python[1].to_pylist() == by_arrow[1].to_pylist()
    assert by_python[0].to_pylist() == by_arrow[0].to_pylist()
    assert 300 < sum(by_arrow[1].to_pylist()) < len(cells) - 300  # parsed and refused cells both occur


def test_a_batch_of_dates_shorter_than_a_plain_time_with_a_bad_cell():
    # Every cell shorter than `YYYY-MM-DD HH:MM:SS`: the byte scan has nothing plain to read and
    # hands every cell to the slower parser (which reads a bare date as midnight).
    values, problems = _parse(["2011-02-11", "2011-02-12", "soon"])
    assert values == [MOVEBANK_NS - (17 * 3600 + 30 * 60) * 10**9, MOVEBANK_NS + (6 * 3600 + 30 * 60) * 10**9, None]
    assert problems == [None, None, "unparseable"]
