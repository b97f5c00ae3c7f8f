"""What the execd log says when a file is done: one line with its books, a W! line when rows were
rejected (the reasons and where they were saved), and each of the run's warnings in csv2lp.toml's terms."""

from __future__ import annotations

from ..books.summary import RunSummary, shown_reasons
from .protocol import Log
from .settings import in_config_terms


def report_done(log: Log, name: str, *, seconds: float, summary: RunSummary, lines_sent: int, runs: int,
                where: str, rejects_paths: list[str], config_path: str | None) -> None:
    counts = (f"{name}: done in {seconds:.1f} s: {summary.rows_read:,} rows, {summary.lines_written:,} lines, "
              f"{summary.rows_rejected:,} rejected; {lines_sent:,} lines sent in {runs} run(s); {where}")
    if summary.rows_rejected:
        shown, others = shown_reasons(summary.rejects_by_reason)
        reasons = ", ".join([f"{n:,} x {reason}" for reason, n in shown] + ([f"and {others}"] if others else []))
        log.warn(f"{counts}; rejected rows ({reasons}) saved to {', '.join(rejects_paths)}")
    else:
        log.info(counts)
    for warning in summary.warnings:  # a value at risk, a column left out: each one W! line
        log.warn(in_config_terms(warning, config_path))
