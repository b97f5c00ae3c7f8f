"""csv2lp and its peers on the same inputs, in one run (see README.md for the command).

Each round is one process per peer (peers.py), timed by pytest-benchmark as a whole
process; the work time and peak RSS of every round go to `extra_info`, which
`report.py` turns into the table. The assertions check that each peer really converted
every row, never how fast it was.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from .datasets import Dataset
from .peers import ALL_PEERS, LABELS, Measurement, Unavailable, run_csv2lp, run_peer

pytestmark = pytest.mark.benchmark

# The slow peers get one round: a tutorial pass over 10M rows takes minutes.
ROUNDS = {"read_csv": 5, "csv2lp": 5, "telegraf": 3, "influx": 3, "influx_csv2lp": 3, "tutorial": 1, "pandas": 1}
S2_LEVEL = "11"
TELEGRAF_MEMORY_SHARE = 0.5  # skip Telegraf when it would need more than this share of RAM


def _available_memory_kb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


@dataclass(frozen=True)
class Baseline:
    """The run a variant is compared with, measured in the same rounds (see measure)."""

    data: Dataset
    runner: Callable[[], Measurement]


def measure(benchmark, record_property, *, peer: str, data, runner, rounds: int, variant: str = "plain",
            baseline: Baseline | None = None) -> list[Measurement]:
    """Run `runner()` for `rounds` rounds under pytest-benchmark; keep every round's numbers.

    With a baseline, every round runs both, back to back and in alternating order, so a
    ratio compares two runs that saw the same load on a shared machine.
    """
    record_property("peer", peer)
    record_property("dataset", data.key)
    record_property("variant", variant)
    rounds_done: list[Measurement] = []
    baseline_done: list[Measurement] = []

    def one_round():
        if baseline is not None and len(rounds_done) % 2 == 0:
            baseline_done.append(baseline.runner())
        rounds_done.append(runner())
        if baseline is not None and len(baseline_done) < len(rounds_done):
            baseline_done.append(baseline.runner())

    benchmark.group = data.key
    benchmark.extra_info.update(peer=peer, label=LABELS.get(peer, peer), variant=variant,
                                dataset=data.as_dict())
    try:
        benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=0)
    except Unavailable as exc:
        pytest.skip(str(exc))
    benchmark.extra_info["rounds"] = [m.as_dict() for m in rounds_done]
    if baseline is not None:
        benchmark.extra_info["baseline"] = {"dataset": baseline.data.as_dict(),
                                            "rounds": [m.as_dict() for m in baseline_done]}
        _check_lines(peer, baseline.data, baseline_done)
    _check_lines(peer, data, rounds_done)
    return rounds_done


def _check_lines(peer: str, data: Dataset, rounds: list[Measurement]) -> None:
    expected = data.rows - data.bad_rows
    for m in rounds:
        if m.error:
            # A peer that fails is a result (recorded, shown in the report), not a harness bug.
            warnings.warn(f"{peer} on {data.key}: {m.error} after {m.lines} lines", stacklevel=3)
        else:
            assert m.lines == expected, f"{peer} wrote {m.lines} lines for {expected} good rows"


PEER_RUNS = [(dataset, peer) for dataset in ("fishers", "large") for peer in ALL_PEERS]


@pytest.mark.parametrize(("dataset", "peer"), PEER_RUNS, ids=[f"{d}-{p}" for d, p in PEER_RUNS])
def test_peer(benchmark, record_property, bench, tmp_path, dataset, peer):
    data = bench.dataset(dataset)
    if peer == "telegraf":
        _skip_telegraf_if_too_big(bench, data, record_property)
    rounds = measure(benchmark, record_property, peer=peer, data=data, rounds=bench.rounds(ROUNDS[peer]),
                     runner=lambda: run_peer(peer, data.path, tmp_path, rows=data.rows))
    if peer == "telegraf" and not rounds[0].error:
        bench.peak_rss_per_row_kb["telegraf"] = max(m.max_rss_kb for m in rounds) / data.rows


def _skip_telegraf_if_too_big(bench, data, record_property) -> None:
    """Telegraf's CSV parser holds the whole file and every metric in memory: skip it when the
    peak measured on the smaller input, scaled to this one, would not fit comfortably."""
    per_row = bench.peak_rss_per_row_kb.get("telegraf")
    if per_row is None:
        return
    predicted = per_row * data.rows
    available = _available_memory_kb()
    if predicted > TELEGRAF_MEMORY_SHARE * available:
        record_property("peer", "telegraf")
        record_property("dataset", data.key)
        pytest.skip(f"Telegraf reads the whole file into memory: ~{predicted / 1e6:.1f} GB predicted for "
                    f"{data.rows:,} rows ({per_row:.2f} KB/row peak measured on the smaller input), more than "
                    f"{TELEGRAF_MEMORY_SHARE:.0%} of the {available / 1e6:.1f} GB available")


def test_csv2lp_s2_level(benchmark, record_property, bench, tmp_path):
    """--s2-level costs <= 15 % extra: against plain csv2lp on the same file, in the same rounds."""
    data = bench.dataset("fishers")
    measure(benchmark, record_property, peer="csv2lp", data=data, rounds=bench.rounds(ROUNDS["csv2lp"]), variant="s2",
            runner=lambda: run_csv2lp(data.path, tmp_path, extra=("--s2-level", S2_LEVEL), name="csv2lp-s2"),
            baseline=Baseline(data, lambda: run_csv2lp(data.path, tmp_path)))


def test_csv2lp_scaling(benchmark, record_property, bench, tmp_path):
    """10x the rows costs <= 11x the time: the large file against 1/10 of its rows, in the same rounds."""
    base, large = bench.dataset("base"), bench.dataset("large")
    measure(benchmark, record_property, peer="csv2lp", data=large, rounds=bench.rounds(ROUNDS["csv2lp"]),
            variant="scaling", runner=lambda: run_csv2lp(large.path, tmp_path),
            baseline=Baseline(base, lambda: run_csv2lp(base.path, tmp_path)))


def test_csv2lp_quarantine(benchmark, record_property, bench, tmp_path):
    """--on-error quarantine with 1 % bad rows costs <= 10 % extra: against a clean file of as many rows."""
    data, clean = bench.dataset("bad"), bench.dataset("base")
    rounds = measure(benchmark, record_property, peer="csv2lp", data=data, rounds=bench.rounds(ROUNDS["csv2lp"]),
                     variant="quarantine",
                     runner=lambda: run_csv2lp(data.path, tmp_path, extra=("--on-error", "quarantine")),
                     baseline=Baseline(clean, lambda: run_csv2lp(clean.path, tmp_path)))
    for m in rounds:
        assert m.error or m.rejected == data.bad_rows, f"{m.rejected} rows rejected, {data.bad_rows} were bad"


def test_csv2lp_big_file(benchmark, record_property, bench, tmp_path):
    """Peak RSS <= 300 MB converting a ~2 GB file."""
    data = bench.dataset("big")
    measure(benchmark, record_property, peer="csv2lp", data=data, rounds=1, variant="big",
            runner=lambda: run_csv2lp(data.path, tmp_path))
