"""Delivery: a batch counts as sent once Telegraf has written it to every watched output.

A line in the pipe is not yet anywhere safe: Telegraf keeps it in a memory buffer until
its output has written it, and a Telegraf that dies (SIGKILL, OOM, a reboot) loses that
buffer, however long ago csv2lp wrote the line. So the spooler moves a file to done/, and
lets a resume skip a line, only once this tracker has seen the line written, from
Telegraf's own numbers (telegraf_stats.py). Until then the line is re-sent after any
restart; re-sent lines are the same points and overwrite themselves in InfluxDB.

How a batch is confirmed. Telegraf's agent hands every metric to every output in the
order it arrives (agent.runOutputs in v1.39.3: one loop, metric by metric, output by
output), and each output's memory buffer is a FIFO that counts, from Telegraf's start,
metrics_added A, and what left it: metrics_written W, metrics_rejected R (refused as bad
data), metrics_dropped D (pushed out by overflow). Writes take batches from the front;
a failed batch goes back to the front. So, as long as nothing was dropped, the metrics
that left are exactly the first W + R ever added, whoever wrote them (other inputs, other
csv2lp writers). For one batch of ours, ending at our line n:

    1. after the batch, csv2lp writes a mark saying n (telegraf_stats.py); it follows the
       batch through the agent, so when the page first shows a mark >= n (fetched at f),
       every line of the batch had been added to every output by f;
    2. a report stamped after f gives A_o >= the position of each of those lines in
       output o: that A_o is the batch's threshold in o;
    3. a later report with W_o + R_o >= threshold, and D_o unchanged since before the
       batch was written, says every line of it left output o written (or refused);
       so does a report stamped after f with buffer_size 0 and D_o unchanged;
    4. when that holds for every watched output, the batch is delivered. Batches are
       delivered in the order they were written.

    Worked example, one output, another writer too: before our batch of 5,000 the page
    said A=12,000, W=10,000, D=0. We write lines 1..5,000 and the mark 5,000. The page at
    f shows the mark; the next report says A=19,000 (the other writer added 2,000 too):
    threshold 19,000. Once a report says W=19,000 (D still 0), all of our 5,000 are
    written. W=18,999 is not enough, whoever's metric is the one left.

What stops a confirmation:
- a drop (D_o grew since the batch's baseline): the oldest metrics were pushed out and
  ours may be among them. Every batch not yet delivered is given up (`lost`); the
  spooler sends again everything after the last delivered line.
- a partial write (write_errors and W or R grew in the same report interval: one part
  of a batch written, another kept) can take metrics out of order; batches in the buffer
  then are confirmed only by an empty buffer (rule 3, second half).
- counters that went back: a Telegraf that restarted (its buffer is gone). Nothing more
  is confirmed in this process (`broken`); the next start re-sends what is open.

Batches written without Telegraf's numbers (the fixed pace, or marks that never reach the
page) are `weak`: delivered once written and all earlier ones are delivered, which is the
old, weaker promise (replay_lines covers the pipe; docs say so).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .telegraf_stats import OutputBuffer

STAMP_MARGIN_S = 0.01  # the agent's stamp may be rounded up to half a millisecond past its reading


@dataclass
class Batch:
    end: int  # this writer's lines through the batch (counted from this process's start)
    ref: Any  # the spooler's: which file and which line
    baseline: dict[str, OutputBuffer] | None  # each watched output as last seen before the write; None: weak
    seen_at: float | None = None  # when the page first showed a mark >= end
    threshold: dict[str, int] | None = None
    reordered: set[str] = field(default_factory=set)  # outputs where only an empty buffer confirms


class Delivery:
    def __init__(self) -> None:
        self.pending: deque[Batch] = deque()
        self.mark = 0  # the highest mark of ours the page has shown
        self.last: dict[str, OutputBuffer] = {}  # the newest report of each output
        self.broken: str | None = None  # why nothing more can be confirmed in this process
        self.lost: str | None = None  # why the pending batches must be sent again
        self.rejected: dict[str, int] = {}  # metrics_rejected growth per output, for the log
        self._delivered: list[tuple[Any, bool]] = []

    # -- what the spooler writes ---------------------------------------------------------

    def add(self, end: int, ref: Any, baseline: dict[str, OutputBuffer] | None) -> None:
        """A batch through our line `end` is in the pipe; `baseline`: the watched outputs as last reported."""
        self.pending.append(Batch(end, ref, None if baseline is None else dict(baseline)))
        self._settle()

    def weaken(self) -> None:
        """Marks do not reach the page: every pending batch is confirmed as written (the weak promise)."""
        for batch in self.pending:
            batch.baseline = None
        self._settle()

    def restart(self) -> None:
        """After `lost`: the spooler sends again from the last delivered line; forget the pending batches."""
        self.pending.clear()
        self.lost = None

    def delivered(self) -> list[tuple[Any, bool]]:
        """(ref, confirmed) of the batches delivered since the last call, oldest first; confirmed
        False for a weak batch (written, but nobody could tell whether Telegraf wrote it on)."""
        done, self._delivered = self._delivered, []
        return done

    @property
    def waiting(self) -> bool:
        """Batches in the pipe or in Telegraf's buffer not yet confirmed."""
        return bool(self.pending)

    # -- what Telegraf says --------------------------------------------------------------

    def on_page(self, outputs: dict[str, OutputBuffer], mark: int | None, fetched_at: float) -> None:
        """The watched outputs' numbers (valid ones only) and our last mark, from one page."""
        if self.broken is not None:
            return
        for name, report in outputs.items():
            before = self.last.get(name)
            if before is not None and report.at <= before.at:
                continue  # not a newer report
            if before is not None and self._went_back(before, report):
                self.broken = (f"Telegraf's counters of output {name} went back (metrics_written "
                               f"{before.metrics_written:,} -> {report.metrics_written:,}): Telegraf restarted")
                return
            if before is not None and report.metrics_rejected > before.metrics_rejected:
                self.rejected[name] = self.rejected.get(name, 0) + report.metrics_rejected - before.metrics_rejected
            if (before is not None and report.write_errors is not None and before.write_errors is not None
                    and report.write_errors > before.write_errors and report.left > before.left):
                for batch in self.pending:  # a write that was part failure, part success: order is not sure
                    batch.reordered.add(name)
            self.last[name] = report
        if mark is not None and mark > self.mark:
            self.mark = mark
            for batch in self.pending:
                if batch.seen_at is None and batch.end <= mark:
                    batch.seen_at = fetched_at
        self._settle()

    @staticmethod
    def _went_back(before: OutputBuffer, now: OutputBuffer) -> bool:
        return (now.metrics_written < before.metrics_written or now.metrics_dropped < before.metrics_dropped
                or now.metrics_rejected < before.metrics_rejected or now.added < before.added)

    def _settle(self) -> None:
        for batch in self.pending:
            if batch.baseline is None or self.lost is not None:
                continue
            for name, base in batch.baseline.items():
                report = self.last.get(name)
                if report is not None and report.metrics_dropped > base.metrics_dropped:
                    self.lost = (f"Telegraf's output {name} dropped "
                                 f"{report.metrics_dropped - base.metrics_dropped:,} metrics from its buffer "
                                 f"(metrics_dropped) while lines of csv2lp were in it")
                    return
            if batch.threshold is None and batch.seen_at is not None:
                after = [self.last.get(name) for name in batch.baseline]
                if all(r is not None and r.at >= batch.seen_at + STAMP_MARGIN_S for r in after):
                    batch.threshold = {name: r.added for name, r in zip(batch.baseline, after)}  # type: ignore[union-attr]
        while self.pending and self._confirmed(self.pending[0]):
            batch = self.pending.popleft()
            self._delivered.append((batch.ref, batch.baseline is not None))

    def _confirmed(self, batch: Batch) -> bool:
        if batch.baseline is None:
            return True
        if self.broken is not None or self.lost is not None or batch.seen_at is None:
            return False
        for name, base in batch.baseline.items():
            report = self.last.get(name)
            if report is None or report.metrics_dropped != base.metrics_dropped:
                return False
            emptied = report.buffer_size == 0 and report.at >= batch.seen_at + STAMP_MARGIN_S
            passed = (batch.threshold is not None and name not in batch.reordered
                      and report.left >= batch.threshold[name])
            if not (emptied or passed):
                return False
        return True
