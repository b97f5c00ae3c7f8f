"""Duplicate points: exact within and across batches, bounded memory, nudge keeps every row."""

from __future__ import annotations

import numpy as np
import pytest

from converter.duplicates import DuplicateMode, DuplicateTracker


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
    _check(tracker, [(["s"] * rows, list(range(rows)))])
    assert all(len(h.recent) <= 100 for h in tracker._history.values())
