"""Turn a benchmark run's JSON (pytest-benchmark's, with our extra_info) into Markdown.

    python -m benchmarks.report RESULTS.json [-o table.md]

Per input: every peer's rows/s, its time as a multiple of `pyarrow.csv.read_csv`'s on
the same file (the ceiling), how many times csv2lp is faster, process wall time and
peak RSS. Then the issue's targets, each with PASS/FAIL. Timings use the fastest round's
work time (see peers.py for what the work time covers); the machine's load average
before and after the run is printed with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .peers import ALL_PEERS, LABELS

DATASET_ORDER = ("fishers", "large", "base", "bad", "big")
VARIANT_LABELS = {
    "s2": "csv2lp --s2-level 11",
    "plain": "csv2lp",
    "scaling": "csv2lp, 10× the rows",
    "quarantine": "csv2lp --on-error quarantine",
    "big": "csv2lp on the big file (peak RSS)",
    "baseline": "↳ csv2lp, its baseline in the same rounds",
}
TARGET_READ_CSV_RATIO = 1.25
TARGET_TUTORIAL_SPEEDUP = 25
TARGET_TELEGRAF_SPEEDUP = 5
TARGET_PEAK_RSS_MB = 300
TARGET_SCALING = 11
TARGET_S2_EXTRA = 0.15
TARGET_QUARANTINE_EXTRA = 0.10


@dataclass
class Result:
    peer: str
    variant: str
    dataset: dict
    rounds: list[dict]
    baseline: Result | None = None  # measured in the same rounds, for a ratio (test_bench.measure)

    @property
    def error(self) -> str | None:
        return next((r["error"] for r in self.rounds if r.get("error")), None)

    @property
    def lines_done(self) -> int | None:
        failed = [r for r in self.rounds if r.get("error")]
        return failed[0]["lines"] if failed else None

    @property
    def seconds(self) -> float | None:
        """The fastest round: on a shared machine, other load only ever adds time."""
        times = [r["work_seconds"] for r in self.rounds if not r.get("error") and r["work_seconds"] is not None]
        return min(times) if times else None

    @property
    def process_seconds(self) -> float:
        return min(r["process_seconds"] for r in self.rounds)

    @property
    def rounds_text(self) -> str:
        """'3 rounds: 1.41-1.78 s' - the spread shows how much the machine's other load moved them."""
        times = [r["work_seconds"] for r in self.rounds if not r.get("error") and r["work_seconds"] is not None]
        if len(times) < 2:
            return "1 round"
        return f"{len(times)} rounds: {min(times):.2f}–{max(times):.2f} s"

    @property
    def peak_rss_mb(self) -> float:
        return max(r["max_rss_kb"] for r in self.rounds) / 1024

    @property
    def peak_rss_text(self) -> str:
        """'≤ 10' when the peer stayed below what the launcher could measure (its own peak)."""
        floor = max(r.get("rss_floor_kb", 0) for r in self.rounds) / 1024
        if floor and self.peak_rss_mb <= floor + 1:  # the launcher grows a little while it spawns
            return f"≤ {floor + 1:,.0f}"
        return f"{self.peak_rss_mb:,.0f}"

    @property
    def rows_per_second(self) -> float | None:
        s = self.seconds
        return self.dataset["rows"] / s if s else None


def load(path: Path) -> tuple[dict, dict[tuple[str, str, str], Result], list[dict]]:
    data = json.loads(path.read_text())
    results: dict[tuple[str, str, str], Result] = {}
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        if "rounds" not in info:
            continue
        result = Result(info["peer"], info.get("variant", "plain"), info["dataset"], info["rounds"])
        if "baseline" in info:
            result.baseline = Result(info["peer"], "baseline", info["baseline"]["dataset"], info["baseline"]["rounds"])
        results[(info["dataset"]["key"], info["peer"], result.variant)] = result
    meta = data.get("csv2lp", {})
    return meta, results, meta.get("skips", [])


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _how_far(result: Result) -> str:
    done = result.lines_done
    return "(no lines)" if not done else f"after {done:,} of {result.dataset['rows']:,} rows"


def _times(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}×" if value < 10 else f"{value:,.0f}×"


def machine_line(meta: dict) -> str:
    versions = meta.get("versions", {})
    memory = meta.get("memory_gb")
    ram = f", {memory:.0f} GB RAM" if memory else ""
    parts = [
        f"Measured {meta.get('date', '?')} on {meta.get('cores', '?')} cores ({meta.get('cpu_model', '?')}{ram})",
        f"Python {meta.get('python', '?')}, pyarrow {versions.get('pyarrow')}, pandas {versions.get('pandas')}, "
        f"influxdb-client {versions.get('influxdb_client')}, csv2lp {versions.get('converter')}, "
        f"{meta.get('telegraf') or 'no Telegraf'}",
    ]
    parts.append(f"sizes: {meta.get('sizes', '?')}")
    load = meta.get("load_average")
    if load:
        parts.append(f"1-min load average {load.get('start', '?')} at the start, {load.get('end', '?')} at the end")
    return "; ".join(parts) + "."


def dataset_table(key: str, results: dict, skips: list[dict]) -> list[str]:
    rows = [r for (d, _, v), r in results.items() if d == key and v == "plain"]
    skipped = [s for s in skips if s.get("dataset") == key and s.get("variant") in (None, "plain")]
    if not rows and not skipped:
        return []
    label = rows[0].dataset["label"] if rows else key
    ceiling = results.get((key, "read_csv", "plain"))
    mine = results.get((key, "csv2lp", "plain"))
    lines = [f"**{label}**", "",
             "| peer | rows/s | work s | × read_csv time | csv2lp is × faster | process s | peak RSS MB | note |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    by_peer = {r.peer: r for r in rows}
    for peer in ALL_PEERS:
        r = by_peer.get(peer)
        if r is None:
            reason = next((s["reason"] for s in skipped if s.get("peer") == peer), None)
            if reason:
                lines.append(f"| {LABELS[peer]} | – | – | – | – | – | – | {_cell('skipped: ' + reason)} |")
            continue
        ratio = r.seconds / ceiling.seconds if (r.seconds and ceiling and ceiling.seconds) else None
        faster = r.seconds / mine.seconds if (r.seconds and mine and mine.seconds and peer != "csv2lp") else None
        note = _cell(f"FAILED {_how_far(r)}: {r.error}") if r.error else r.rounds_text
        lines.append(f"| {LABELS[peer]} | {_num(r.rows_per_second)} | {_num(r.seconds, 2)} | {_times(ratio)} | "
                     f"{_times(faster)} | {_num(r.process_seconds, 2)} | {r.peak_rss_text} | {note} |")
    return lines + [""]


@dataclass
class Target:
    name: str
    measured: str
    goal: str
    passed: bool | None  # None: could not be measured

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]


def _get(results, dataset, peer, variant="plain") -> Result | None:
    r = results.get((dataset, peer, variant))
    return r if r and r.seconds else None


def _missing(results, dataset, peer, variant="plain") -> str:
    """Why a number is missing: the run failed, or it never ran."""
    r = results.get((dataset, peer, variant))
    if r is not None and r.error:
        return f"{LABELS.get(peer, peer)} FAILED {_how_far(r)}"
    return "not measured"


def targets(results: dict) -> list[Target]:
    """The issue's seven targets, each measured in this run or marked n/a with the reason."""
    out: list[Target] = []
    fishers = results.get(("fishers", "csv2lp", "plain")) or results.get(("fishers", "read_csv", "plain"))
    where = fishers.dataset["label"].split(" (")[0] if fishers else "fishers"
    mine, ceiling = _get(results, "fishers", "csv2lp"), _get(results, "fishers", "read_csv")

    name, goal = f"csv2lp wall time vs pyarrow.csv.read_csv ({where})", f"≤ {TARGET_READ_CSV_RATIO}×"
    if mine and ceiling:
        ratio = mine.seconds / ceiling.seconds
        out.append(Target(name, f"{ratio:.2f}× ({mine.rows_per_second:,.0f} vs {ceiling.rows_per_second:,.0f} rows/s)",
                          goal, ratio <= TARGET_READ_CSV_RATIO))
    else:
        out.append(Target(name, _missing(results, "fishers", "csv2lp" if not mine else "read_csv"), goal, None))

    for peer, wanted in (("tutorial", TARGET_TUTORIAL_SPEEDUP), ("telegraf", TARGET_TELEGRAF_SPEEDUP)):
        name, goal = f"csv2lp speed vs {LABELS[peer]} ({where})", f"≥ {wanted}×"
        other = _get(results, "fishers", peer)
        if mine and other:
            speedup = other.seconds / mine.seconds
            out.append(Target(name, f"{speedup:,.1f}×", goal, speedup >= wanted))
        else:
            out.append(Target(name, _missing(results, "fishers", "csv2lp" if not mine else peer), goal, None))

    big = results.get(("big", "csv2lp", "big"))
    name, goal = "peak RSS converting a ~2 GB generated file", f"≤ {TARGET_PEAK_RSS_MB} MB"
    if big and not big.error:
        name = f"peak RSS converting a {_size(big.dataset['bytes'])} generated file"
        out.append(Target(name, f"{big.peak_rss_mb:,.0f} MB", goal, big.peak_rss_mb <= TARGET_PEAK_RSS_MB))
    else:
        out.append(Target(name, _missing(results, "big", "csv2lp", "big"), goal, None))

    paired = _get(results, "large", "csv2lp", "scaling")
    if paired and paired.baseline and paired.baseline.seconds:
        base, large = paired.baseline, paired
    else:  # a run without the paired test: the separate runs
        base, large = _get(results, "base", "csv2lp"), _get(results, "large", "csv2lp")
    name, goal = "10× the rows costs", f"≤ {TARGET_SCALING}× the time"
    if base and large:
        rows_ratio = large.dataset["rows"] / base.dataset["rows"]
        cost = large.seconds / base.seconds * (10 / rows_ratio)
        out.append(Target(f"10× the rows ({base.dataset['rows']:,} → {large.dataset['rows']:,}) costs",
                          f"{cost:.2f}× the time", goal, cost <= TARGET_SCALING))
    else:
        out.append(Target(name, _missing(results, "large" if base else "base", "csv2lp"), goal, None))

    s2 = _get(results, "fishers", "csv2lp", "s2")
    plain = s2.baseline if s2 and s2.baseline and s2.baseline.seconds else mine
    name, goal = f"--s2-level 11 costs ({where})", f"≤ +{TARGET_S2_EXTRA:.0%}"
    if s2 and plain:
        extra = s2.seconds / plain.seconds - 1
        out.append(Target(name, f"{extra:+.0%}", goal, extra <= TARGET_S2_EXTRA))
    else:
        out.append(Target(name, _missing(results, "fishers", "csv2lp", "plain" if not mine else "s2"), goal, None))

    bad = _get(results, "bad", "csv2lp", "quarantine")
    clean = bad.baseline if bad and bad.baseline and bad.baseline.seconds else base  # same rows, no bad ones
    name, goal = "--on-error quarantine with 1 % bad rows costs", f"≤ +{TARGET_QUARANTINE_EXTRA:.0%}"
    if bad and clean:
        extra = bad.seconds / clean.seconds - 1
        out.append(Target(f"--on-error quarantine with {bad.dataset['bad_rows']:,} bad rows of "
                          f"{bad.dataset['rows']:,} costs", f"{extra:+.0%}", goal, extra <= TARGET_QUARANTINE_EXTRA))
    else:
        out.append(Target(name, _missing(results, "bad", "csv2lp", "quarantine"), goal, None))
    return out


def _size(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"


def _cell(text: str) -> str:
    """Text that cannot break a Markdown table row."""
    return text.replace("|", "\\|").replace("\n", " ")


def render(path: Path) -> str:
    meta, results, skips = load(path)
    lines = [machine_line(meta), ""]
    for key in ("fishers", "large"):
        lines += dataset_table(key, results, skips)
    extras = [r for (d, _, v), r in results.items() if (d, v) not in (("fishers", "plain"), ("large", "plain"))]
    if extras:
        lines += ["**csv2lp variants**", "",
                  "| run | input | rows/s | work s | process s | peak RSS MB | rejected | note |",
                  "|---|---|---:|---:|---:|---:|---:|---|"]
        ordered = sorted(extras, key=lambda r: DATASET_ORDER.index(r.dataset["key"]))
        for r in [run for result in ordered for run in (result, result.baseline) if run is not None]:
            rejected = max((x.get("rejected", 0) for x in r.rounds), default=0)
            note = _cell(f"FAILED {_how_far(r)}: {r.error}") if r.error else r.rounds_text
            lines.append(f"| {VARIANT_LABELS.get(r.variant, r.variant)} | {r.dataset['label']} | "
                         f"{_num(r.rows_per_second)} | {_num(r.seconds, 2)} | {_num(r.process_seconds, 2)} | "
                         f"{r.peak_rss_text} | {rejected:,} | {note} |")
        lines.append("")
    lines += ["**Targets**", "", "| target | measured | goal | result |", "|---|---|---|---|"]
    for t in targets(results):
        lines.append(f"| {t.name} | {t.measured} | {t.goal} | {t.verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="the --benchmark-json file of a run")
    parser.add_argument("-o", "--output", type=Path, help="also write the Markdown here")
    args = parser.parse_args(argv)
    text = render(args.results)
    if args.output:
        args.output.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
