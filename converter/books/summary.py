"""The numbers every run ends with: rows read == lines written + rows rejected."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

# Reasons listed one by one in a summary; a damaged file can reject rows for a hundred
# reasons (a ragged row's reason names its cell count), which would bury the rest.
SHOWN_REASONS = 10


def reason_lines(counts: Mapping[str, int], after_others: str = "") -> list[str]:
    """The summary's indented lines of reject reasons: the most frequent, then one for the others."""
    shown, others = shown_reasons(counts)
    return [f"  {count:,} × {reason}" for reason, count in shown] + ([f"  and {others}{after_others}"] if others else [])


def shown_reasons(counts: Mapping[str, int]) -> tuple[list[tuple[str, int]], str | None]:
    """The most frequent reasons with their counts, and a phrase for the others (None if none is left)."""
    ranked = sorted(counts.items(), key=lambda item: -item[1])  # stable: ties stay in the order first seen
    if len(ranked) <= SHOWN_REASONS:
        return ranked, None
    others = ranked[SHOWN_REASONS:]
    return ranked[:SHOWN_REASONS], f"{len(others):,} other reasons ({sum(n for _, n in others):,} rows)"


@dataclass
class RunSummary:
    files: int = 0
    rows_read: int = 0
    lines_written: int = 0  # lines the output took (handed to the system, or confirmed by a server)
    rows_rejected: int = 0
    lines_not_written: int = 0  # lines made but not taken: the output failed (a full disk, an I/O error)
    rejects_unsaved: int = 0  # rejected rows the rejects file could not take (it failed)
    rejects_by_reason: Counter = field(default_factory=Counter)
    fields_dropped: int = 0  # NaN / ±Inf values left out of their lines
    blank_lines: int = 0  # lines with no cell at all; not rows
    duplicate_points: int = 0  # lines whose series and time repeat an earlier line's
    duplicates_unchecked: int = 0  # rows older than the duplicate check's window
    points_nudged: int = 0  # duplicates whose time --duplicates nudge moved
    unbalanced_quotes: int = 0  # rejected rows whose quoted cell ran over the rows after it (quotes.py)
    lines_swallowed: int = 0  # lines those cells ran over: their rows were never read as rows
    bytes_written: int = 0
    seconds: float = 0.0
    rejects_files: list[str] = field(default_factory=list)
    inferred_types: dict[str, str] = field(default_factory=dict)
    stopped_at: str | None = None  # the --on-error fail message, when it stopped the run
    warnings: list[str] = field(default_factory=list)  # what the user must hear of: values or columns at risk

    def warn(self, messages: list[str]) -> None:
        for message in messages:
            if message not in self.warnings:
                self.warnings.append(message)
    # Lines a server confirmed (--influx-url); None when the output confirms nothing (a file).
    lines_confirmed: int | None = None

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.lines_written + self.lines_not_written + self.rows_rejected

    def to_dict(self) -> dict:
        numbers = {
            "files": self.files,
            "rows_read": self.rows_read,
            "lines_written": self.lines_written,
            "rows_rejected": self.rows_rejected,
            "lines_not_written": self.lines_not_written,
            "rejects_unsaved": self.rejects_unsaved,
            "rejects_by_reason": dict(self.rejects_by_reason.most_common()),
            "fields_dropped": self.fields_dropped,
            "blank_lines": self.blank_lines,
            "duplicate_points": self.duplicate_points,
            "duplicates_unchecked": self.duplicates_unchecked,
            "points_nudged": self.points_nudged,
            "unbalanced_quotes": self.unbalanced_quotes,
            "lines_swallowed": self.lines_swallowed,
            "bytes_written": self.bytes_written,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_read / self.seconds) if self.seconds > 0 else None,
            "rejects_files": self.rejects_files,
            "inferred_types": self.inferred_types,
            "stopped_at": self.stopped_at,
            "warnings": self.warnings,
        }
        if self.lines_confirmed is not None:  # only a run that wrote to a server has it
            numbers["lines_confirmed"] = self.lines_confirmed
        return numbers

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    def text_lines(self) -> list[str]:
        rate = f" in {self.seconds:.2f} s ({self.rows_read / self.seconds:,.0f} rows/s)" if self.seconds > 0 else ""
        out = [
            f"{_count(self.rows_read, 'row')} read from {_count(self.files, 'file')}{rate}",
            self._written_line(),
            f"{_count(self.rows_rejected, 'row')} rejected",
        ]
        if self.lines_not_written:
            out.insert(2, f"{_count(self.lines_not_written, 'line')} not written: the output failed (see the error above)")
        out += reason_lines(self.rejects_by_reason, ": --summary-json lists every reason")
        if self.unbalanced_quotes:
            out.append(f"{_count(self.lines_swallowed, 'line')} of the input read into "
                       f"{_count(self.unbalanced_quotes, 'rejected row')} by unbalanced quotes: the rows on "
                       f"them were not converted (see the reasons above)")
        if self.rejects_unsaved:
            out.append(f"{_count(self.rejects_unsaved, 'rejected row')} could not be saved to "
                       f"{', '.join(self.rejects_files) or 'the rejects file'}: writing it failed (see the error above)")
        elif self.rejects_files:
            out.append(f"rejected rows saved to {', '.join(self.rejects_files)}")
        if self.fields_dropped:
            out.append(f"{self.fields_dropped:,} NaN/Inf values left out of their lines (line protocol has no NaN)")
        if self.points_nudged:
            out.append(f"{_count(self.points_nudged, 'duplicate point')} moved to the next free time unit (--duplicates nudge)")
        elif self.duplicate_points and not any(r.startswith(("duplicate point", "time past the end"))
                                               for r in self.rejects_by_reason):
            out.append(f"{_count(self.duplicate_points, 'duplicate point')} (same series and time as an earlier line): "
                       f"InfluxDB keeps only the last of each; see --duplicates")
        if self.duplicates_unchecked:
            out.append(f"{_count(self.duplicates_unchecked, 'row')} too far out of time order to check for duplicates")
        if self.blank_lines:
            out.append(f"{_count(self.blank_lines, 'blank line')} skipped")
        out += [f"warning: {message}" for message in self.warnings]
        if not self.balanced:  # pragma: no cover - a bug, never an input problem
            out.append("BUG: rows read != lines written + rows rejected; please report it")
        return out

    def _written_line(self) -> str:
        if self.lines_confirmed is None or self.lines_confirmed == self.lines_written:
            return f"{_count(self.lines_written, 'line')} written"
        # A line the server did not confirm is not called written (it may or may not be stored).
        return (f"{_count(self.lines_written, 'line')} converted: {self.lines_confirmed:,} written (confirmed by "
                f"the server), {self.lines_written - self.lines_confirmed:,} NOT confirmed")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
