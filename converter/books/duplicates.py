"""Duplicate points: rows with the same measurement, tag set and timestamp.

InfluxDB keeps one point per (series, time): a second row with the same key silently
overwrites the first one's fields. This module finds such rows across a whole run, in
file order, with bounded memory:

- within a batch the check is exact (a sort of (series, time) keys);
- across batches, each series remembers the largest time it has seen and, up to
  `window` timestamps per series, the most recent times themselves. A row later than
  every time its series has seen cannot be a duplicate; a row that is not is checked
  against the remembered times, exactly. A row older than all remembered times of its
  series cannot be checked: it is counted as `unchecked`, never passed off as unique.
  So the check is exact for files whose series are in time order (Movebank exports are)
  or out of order by less than `window` points, and says how many rows it could not check.

Memory: at most 16 bytes x `window` per series (8 per time, and room to append the next
batch's times without copying the window; the default window, 100,000, is 1.6 MB per
series), and never more than twice the times seen. `mode` decides what a duplicate does:
`warn` (count it; the line is written and InfluxDB keeps the last one), `error` (reject
the row), `nudge` (move the later row by the smallest unit of the output precision, as
often as needed, so that both points survive; its time is then off by that many units,
which is the trade-off). A row nudged past `last_time`, the latest time a line can carry, is
not moved there: it is marked `beyond`, for the caller to reject.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class DuplicateMode(str, Enum):
    OFF = "off"
    WARN = "warn"
    ERROR = "error"
    NUDGE = "nudge"


DEFAULT_WINDOW = 100_000


@dataclass
class _SeriesHistory:
    """The largest time a series has seen, and its most recent times (sorted, distinct, at most
    `window`), kept at the end of a buffer with room to grow: in-order times are appended
    without copying the window (which may hold 100,000 times) for every batch."""

    latest: int
    buffer: np.ndarray
    start: int = 0
    stop: int = 0

    @property
    def recent(self) -> np.ndarray:
        return self.buffer[self.start:self.stop]

    def keep(self, times: np.ndarray, window: int) -> None:
        """Make `times` (sorted, distinct) the remembered ones, the last `window` of them."""
        times = times[-window:]
        self.buffer = np.empty(max(16, 2 * len(times)), dtype=np.int64)
        self.buffer[:len(times)] = times
        self.start, self.stop = 0, len(times)

    def append(self, times: np.ndarray, window: int) -> None:
        """Add `times` (sorted, distinct, all later than every remembered time)."""
        if self.stop + len(times) > len(self.buffer):
            self.keep(np.concatenate((self.recent, times)), window)
            return
        self.buffer[self.stop:self.stop + len(times)] = times
        self.stop += len(times)
        self.start = max(self.start, self.stop - window)


@dataclass
class DuplicateCheck:
    """The outcome for one batch of lines (arrays aligned with the lines)."""

    duplicate: np.ndarray  # bool: the row repeats an earlier (series, time)
    times: np.ndarray  # int64 times, moved where nudged
    nudged: np.ndarray  # bool: the row's time was moved
    unchecked: int  # rows older than their series' remembered window
    beyond: np.ndarray | None = None  # bool (nudge): no free time up to `last_time`; the row's time is not moved


@dataclass
class DuplicateTracker:
    mode: DuplicateMode = DuplicateMode.WARN
    window: int = DEFAULT_WINDOW
    last_time: int = 2**63 - 2  # the latest time (output units) a nudge may move a row to
    series_ids: dict[str, int] = field(default_factory=dict)
    _history: dict[int, _SeriesHistory] = field(default_factory=dict)

    def check(self, series_codes: np.ndarray, series_strings: list[str], times: np.ndarray) -> DuplicateCheck:
        """`series_codes[i]` indexes `series_strings`; `times[i]` is the row's time in output units."""
        ids_of_codes = np.array([self.series_ids.setdefault(s, len(self.series_ids)) for s in series_strings],
                                dtype=np.int64)
        ids = ids_of_codes[series_codes] if len(series_codes) else np.zeros(0, dtype=np.int64)
        times = times.astype(np.int64, copy=True)
        if self.mode is DuplicateMode.NUDGE:
            return self._check_each_series(ids, times)
        # One sort by (series, time) for the whole batch; lexsort is stable, so among equal keys
        # the first in file order comes first and the later ones are the repeats.
        order = np.lexsort((times, ids))
        sorted_ids, sorted_times = ids[order], times[order]
        duplicate = np.zeros(len(times), dtype=bool)
        duplicate[1:] = (sorted_ids[1:] == sorted_ids[:-1]) & (sorted_times[1:] == sorted_times[:-1])
        too_old = np.zeros(len(times), dtype=bool)
        bounds = np.flatnonzero(np.diff(sorted_ids)) + 1
        starts = [0, *bounds.tolist()] if len(times) else []
        # Python once per series of the batch, for what only that series' window can answer.
        for lo, hi in zip(starts, [*starts[1:], len(times)]):
            sid, group = int(sorted_ids[lo]), sorted_times[lo:hi]
            history = self._history.get(sid)
            if history is not None:
                seen = history.recent
                if len(seen) >= self.window:
                    too_old[lo:hi] = group < seen[0]
                if group[0] <= history.latest:  # some rows may repeat an earlier batch's time
                    position = np.minimum(np.searchsorted(seen, group), len(seen) - 1)
                    duplicate[lo:hi] |= seen[position] == group  # never true for a row older than the window
            # Times already remembered (repeats, within the batch or of an earlier one) add nothing:
            # when a file is read twice, whole batches of them skip the sorted insertion.
            self._remember(sid, group[~(duplicate[lo:hi] | too_old[lo:hi])])
        in_file_order = np.empty_like(duplicate)
        in_file_order[order] = duplicate
        return DuplicateCheck(in_file_order, times, np.zeros(len(times), dtype=bool), int(too_old.sum()))

    def _check_each_series(self, ids: np.ndarray, times: np.ndarray) -> DuplicateCheck:
        """The check series by series, for modes that change times (nudge)."""
        duplicate = np.zeros(len(times), dtype=bool)
        nudged = np.zeros(len(times), dtype=bool)
        beyond = np.zeros(len(times), dtype=bool)
        unchecked = 0
        # Group rows by series with one stable sort: Python then works once per series, not per row.
        order = np.argsort(ids, kind="stable")
        bounds = np.flatnonzero(np.diff(ids[order])) + 1
        for rows in np.split(order, bounds) if len(order) else []:
            sid = int(ids[rows[0]])
            dup, new_times, moved, past, skipped = self._check_series(sid, times[rows])
            duplicate[rows], times[rows], nudged[rows], beyond[rows] = dup, new_times, moved, past
            unchecked += skipped
        return DuplicateCheck(duplicate, times, nudged, unchecked, beyond)

    def _check_series(self, sid: int, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        history = self._history.get(sid)
        seen = history.recent if history is not None else np.zeros(0, dtype=np.int64)
        floor = seen[0] if len(seen) else None
        latest = history.latest if history is not None else None

        # Rows older than everything remembered (and not new either) cannot be checked.
        too_old = np.zeros(len(times), dtype=bool)
        if history is not None and len(seen) >= self.window:
            too_old = times < floor

        duplicate = np.zeros(len(times), dtype=bool)
        moved, beyond = np.zeros(len(times), dtype=bool), np.zeros(len(times), dtype=bool)
        # Earlier batches: a time equal to a remembered one.
        if latest is not None:
            maybe = (times <= latest) & ~too_old
            if maybe.any():
                position = np.searchsorted(seen, times[maybe])
                hit = position < len(seen)
                hit[hit] = seen[position[hit]] == times[maybe][hit]
                duplicate[np.flatnonzero(maybe)[hit]] = True
        # This batch: a time already used by an earlier row of the batch (stable order = file order).
        order = np.argsort(times, kind="stable")
        ordered = times[order]
        repeat = np.zeros(len(times), dtype=bool)
        repeat[1:] = ordered[1:] == ordered[:-1]
        duplicate[order[repeat]] = True

        if self.mode is DuplicateMode.NUDGE and duplicate.any():
            times, moved, beyond = self._nudge(times, duplicate, seen)
            kept = np.unique(times[~too_old])
        else:
            kept = ordered[~(repeat | too_old[order])]  # sorted and distinct already: no second sort
        self._remember(sid, kept)
        return duplicate, times, moved, beyond, int(too_old.sum())

    def _nudge(self, times: np.ndarray, duplicate: np.ndarray, seen: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Move each duplicate to the next free unit after its time, in file order; one with no free
        unit up to `last_time` stays where it is, marked in the third array."""
        times = times.copy()
        # A walk only goes up from a duplicate's time, so only the times from the lowest one on can
        # be in its way: a window of 100,000 times turned into a set for every series of every batch
        # that holds a duplicate was Python work per remembered time, not per duplicate.
        lowest = times[duplicate].min()
        kept_times = times[~duplicate]  # the batch's non-duplicates keep their times
        taken = set(seen[np.searchsorted(seen, lowest):].tolist()) | set(kept_times[kept_times >= lowest].tolist())
        moved = np.zeros(len(times), dtype=bool)
        beyond = np.zeros(len(times), dtype=bool)
        # A taken time -> where the walk from it goes on: a run of k taken times is walked once,
        # not once per duplicate (10,000 copies of one row cost 10,000 steps, not 50 million).
        after: dict[int, int] = {}
        # Python per duplicate row only: duplicates are the exception being repaired here.
        for row in np.flatnonzero(duplicate):
            t = int(times[row])
            walked = []
            while t in taken:
                walked.append(t)
                t = after.get(t, t + 1)
            if t > self.last_time:  # never stored: int64 would overflow, and InfluxDB refuses the line
                beyond[row] = True
                after.update(dict.fromkeys(walked, t))
                continue
            taken.add(t)
            after.update(dict.fromkeys(walked, t + 1))
            moved[row] = t != times[row]
            times[row] = t
        return times, moved, beyond

    def _remember(self, sid: int, times: np.ndarray) -> None:
        """Add sorted, distinct `times` to the series' window."""
        if not len(times):
            return
        history = self._history.get(sid)
        if history is None:
            history = self._history[sid] = _SeriesHistory(int(times[-1]), np.zeros(0, dtype=np.int64))
            history.keep(times, self.window)
            return
        old = history.recent
        if not len(old) or times[0] > old[-1]:
            history.append(times, self.window)  # in-order data, the usual case
        else:
            merged = _merge_sorted(old, times)
            if merged is not old:
                history.keep(merged, self.window)
        history.latest = max(history.latest, int(times[-1]))


def _merge_sorted(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """The union of two sorted, distinct arrays, sorted: the new values are inserted where they
    belong (one pass over the window) instead of sorting the window again for every batch.
    `old` itself when every new value is in it already (a file read twice)."""
    position = np.searchsorted(old, new)
    known = old[np.minimum(position, len(old) - 1)] == new
    if known.all():
        return old
    return np.insert(old, position[~known], new[~known])
