"""Duplicate points: exact within and across batches, bounded memory, nudge keeps every row."""

from __future__ import annotations

import numpy as np
import pytest

from converter.books.duplicates import DuplicateMode, DuplicateTracker


def _check(tracker, batches):
    results = []
    for series, times in batches:
        names = sorted(set(series))
        codes = np.array([names.index(s) for s in series], dtype=np.int64)
        results.append(tracker.check(codes, names, np.array(times, dtype=np.int64)))
    return results


def test_same_time_in_another_series_is_not_a_duplicate():
    (result,) = _check(DuplicateTracker(), [(["a", "b", "a"], [1, 1, 2])])
    assert result.duplicate.tolist() == [False, False, False]


def test_duplicates_within_a_batch_keep_the_first_and_flag_the_later_rows():
    (result,) = _check(DuplicateTracker(), [(["a", "a", "a", "b", "a"], [5, 6, 5, 5, 5])])
    assert result.duplicate.tolist() == [False, False, True, False, True]
    assert result.times.tolist() == [5, 6, 5, 5, 5]  # warn: times unchanged


def test_duplicates_across_batches():
    first, second = _check(DuplicateTracker(), [(["a", "a"], [1, 2]), (["a", "a", "b"], [2, 3, 2])])
    assert first.duplicate.tolist() == [False, False]
    assert second.duplicate.tolist() == [True, False, False]


def test_nudge_moves_later_duplicates_to_the_next_free_unit():
    tracker = DuplicateTracker(mode=DuplicateMode.NUDGE)
    first, second = _check(tracker, [(["a"] * 4, [10, 10, 11, 10]), (["a", "a"], [10, 12])])
    assert first.times.tolist() == [10, 12, 11, 13]  # 11 is taken by the third row
    assert first.nudged.tolist() == [False, True, False, True]
    assert second.times.tolist() == [14, 15]  # 10 to 13 are taken, the nudged 12 included
    assert second.duplicate.tolist() == [True, True]


@pytest.mark.parametrize("seed", range(5))
def test_nudge_matches_a_set_of_every_time_taken(seed):
    """Shuffled, overlapping batches: each duplicate lands on the first time at or after its own
    that no row of its series holds, exactly as a set of every time taken would say, including
    times remembered from earlier batches just above the batch's lowest duplicate."""
    rng = np.random.default_rng(seed)
    tracker, taken = DuplicateTracker(mode=DuplicateMode.NUDGE, window=100_000), {}
    nudged = 0
    for _ in range(30):
        size = int(rng.integers(1, 300))
        series = [str(s) for s in rng.integers(0, 3, size)]
        times = (int(rng.integers(0, 1_500)) + rng.integers(0, 200, size)).tolist()
        (result,) = _check(tracker, [(series, times)])
        expected, firsts = list(times), {}
        for row, key in enumerate(zip(series, times)):
            firsts.setdefault(key, row)
        duplicate = [key[1] in taken.get(key[0], set()) or firsts[key] != row
                     for row, key in enumerate(zip(series, times))]
        for row, (name, time) in enumerate(zip(series, times)):
            if not duplicate[row]:
                taken.setdefault(name, set()).add(time)
        for row in (r for r in range(size) if duplicate[r]):
            name, time = series[row], times[row]
            while time in taken[name]:
                time += 1
            taken[name].add(time)
            expected[row] = time
        assert result.duplicate.tolist() == duplicate
        assert result.times.tolist() == expected
        nudged += int(result.nudged.sum())
    assert nudged > 100  # the batches overlap enough to exercise the walk


def test_out_of_order_rows_within_the_window_are_checked_exactly():
    tracker = DuplicateTracker(window=10)
    batches = [(["a"] * 5, [1, 2, 3, 4, 5]), (["a", "a"], [3, 0])]
    _, second = _check(tracker, batches)
    assert second.duplicate.tolist() == [True, False] and second.unchecked == 0


def test_rows_older_than_the_window_are_counted_as_unchecked():
    tracker = DuplicateTracker(window=3)
    _, second = _check(tracker, [(["a"] * 5, [1, 2, 3, 4, 5]), (["a", "a", "a"], [1, 4, 9])])
    # The window holds 3, 4, 5: time 1 cannot be checked, 4 is a duplicate, 9 is new.
    assert second.duplicate.tolist() == [False, True, False]
    assert second.unchecked == 1


@pytest.mark.parametrize("rows", [1, 1000, 50_000])
def test_memory_stays_bounded_by_the_window(rows):
    tracker = DuplicateTracker(window=100)
    # In-order batches: appended to the window, which keeps the latest 100 times.
    _check(tracker, [(["s"] * rows, list(range(rows))) for _ in range(1)] +
           [(["s"] * 30, list(range(rows + 30 * k, rows + 30 * (k + 1)))) for k in range(10)])
    (history,) = tracker._history.values()
    last = rows + 300
    assert history.recent.tolist() == list(range(max(0, last - 100), last))


@pytest.mark.parametrize("seed", range(5))
def test_out_of_order_batches_match_a_set_of_everything_seen(seed):
    """Repeated, shuffled and overlapping batches (like a file concatenated with itself): while
    the window holds every time, the tracker flags exactly what a set of all seen keys would."""
    rng = np.random.default_rng(seed)
    tracker, seen = DuplicateTracker(window=10_000), set()
    for _ in range(30):
        size = int(rng.integers(1, 300))
        series = [str(s) for s in rng.integers(0, 3, size)]
        start = int(rng.integers(0, 2_000))
        times = (start + rng.integers(0, 400, size)).tolist()
        (result,) = _check(tracker, [(series, times)])
        expected = []
        for key in zip(series, times):
            expected.append(key in seen)
            seen.add(key)
        assert result.duplicate.tolist() == expected and result.unchecked == 0
        assert all(np.all(np.diff(h.recent) > 0) for h in tracker._history.values())


@pytest.mark.parametrize("seed", range(6))
def test_the_batch_wide_check_equals_the_series_by_series_one(seed):
    """check() sorts the whole batch once; nudge mode still goes series by series. With a small
    window (rows too old to check, windows cut short) both must flag the same rows."""
    rng = np.random.default_rng(seed)
    window = int(rng.integers(5, 60))
    batch_wide, per_series = DuplicateTracker(window=window), DuplicateTracker(window=window)
    names = [f"s{i}" for i in range(int(rng.integers(1, 6)))]
    flagged = unchecked = 0
    for _ in range(40):
        size = int(rng.integers(1, 200))
        codes = rng.integers(0, len(names), size)
        times = int(rng.integers(0, 500)) + rng.integers(0, 150, size)
        wide = batch_wide.check(codes, names, times)
        ids = np.array([per_series.series_ids.setdefault(n, len(per_series.series_ids)) for n in names])[codes]
        each = per_series._check_each_series(ids, times.astype(np.int64))
        assert wide.duplicate.tolist() == each.duplicate.tolist()
        assert wide.unchecked == each.unchecked
        flagged, unchecked = flagged + int(wide.duplicate.sum()), unchecked + wide.unchecked
    assert flagged and unchecked  # both outcomes occurred
    for sid, history in batch_wide._history.items():
        assert history.recent.tolist() == per_series._history[sid].recent.tolist()


# ---------------------------------------------------------------- through the whole pipeline

import csv  # noqa: E402
import io  # noqa: E402
import textwrap  # noqa: E402

from converter import ConvertOptions, MappingSpec, TagSpec, TimeSpec, convert  # noqa: E402
from converter.mapping import Precision  # noqa: E402
from converter.sinks.file import StreamSink  # noqa: E402

DUPLICATED = textwrap.dedent("""\
    id,time,v
    a,2020-01-01T00:00:00Z,1
    a,2020-01-01T00:00:00Z,2
    b,2020-01-01T00:00:00Z,3
    a,2020-01-01T00:00:01Z,4
""")


def _convert(tmp_path, mode, *texts, block_size=None):
    paths = []
    for i, text in enumerate(texts):
        path = tmp_path / f"in{i}.csv"
        path.write_text(text)
        paths.append(str(path))
    out = io.BytesIO()
    options = ConvertOptions(precision=Precision.S, duplicates=DuplicateMode(mode),
                             rejects_path=str(tmp_path / "rejects.csv"), **({"block_size": block_size} if block_size else {}))
    summary = convert(paths, mapping=MappingSpec(measurement="m", tags=(TagSpec("id"),), time=TimeSpec(column="time")),
                      options=options, sink=StreamSink(out, owned=False))
    return out.getvalue().decode().splitlines(), summary


@pytest.mark.parametrize(
    ("mode", "lines", "counts"),
    [
        ("warn", ["m,id=a v=1 1577836800", "m,id=a v=2 1577836800", "m,id=b v=3 1577836800", "m,id=a v=4 1577836801"],
         (1, 0, 0)),
        ("error", ["m,id=a v=1 1577836800", "m,id=b v=3 1577836800", "m,id=a v=4 1577836801"], (1, 0, 1)),
        ("nudge", ["m,id=a v=1 1577836800", "m,id=a v=2 1577836802", "m,id=b v=3 1577836800", "m,id=a v=4 1577836801"],
         (1, 1, 0)),
        ("off", ["m,id=a v=1 1577836800", "m,id=a v=2 1577836800", "m,id=b v=3 1577836800", "m,id=a v=4 1577836801"],
         (0, 0, 0)),
    ],
)
def test_modes_through_the_pipeline(tmp_path, mode, lines, counts):
    written, summary = _convert(tmp_path, mode, DUPLICATED)
    assert written == lines
    assert (summary.duplicate_points, summary.points_nudged, summary.rows_rejected) == counts
    assert summary.balanced
    if mode == "error":
        with open(tmp_path / "rejects.csv", newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[1][:3] == [str(tmp_path / "in0.csv"), "3", "duplicate point: same measurement, tags and time as an earlier row"]


def test_error_mode_rejects_join_the_encoders_rejects_of_the_same_block(tmp_path):
    # The encoding thread formats the block's rejects before the duplicate check adds its own:
    # both must reach the rejects file, in line order.
    text = "id,time,v\na,2020-01-01T00:00:00Z,1\na,2020-01-01T00:00:00Z,2\nb,2020-02-30T00:00:00Z,3\n"
    written, summary = _convert(tmp_path, "error", text)
    assert written == ["m,id=a v=1 1577836800"]
    with open(tmp_path / "rejects.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert [row[1] for row in rows[1:]] == ["3", "4"]
    assert rows[1][2].startswith("duplicate point") and rows[2][3] == "2020-02-30T00:00:00Z"
    assert summary.rows_rejected == 2 and summary.balanced


def test_duplicates_are_found_across_files_and_blocks(tmp_path):
    many = "id,time,v\n" + "".join(f"a,{1_600_000_000 + i},{i}\n" for i in range(20_000))
    again = "id,time,v\na,1600000005,1\na,1600019999,2\na,1700000000,3\n"
    path_a, path_b = tmp_path / "a.csv", tmp_path / "b.csv"
    path_a.write_text(many)
    path_b.write_text(again)
    out = io.BytesIO()
    summary = convert([str(path_a), str(path_b)],
                      mapping=MappingSpec(measurement="m", tags=(TagSpec("id"),), time=TimeSpec(column="time", format="epoch_s")),
                      options=ConvertOptions(precision=Precision.S, block_size=65536, duplicates=DuplicateMode.WARN),
                      sink=StreamSink(out, owned=False))
    assert summary.duplicate_points == 2 and summary.duplicates_unchecked == 0
