"""The end-to-end results as Markdown: one table per server, the machine above it.

    python -m benchmarks.ingest.table benchmarks/results/ingest-1000000.json

Each path's row is its median round (by time until the count was complete); the ratios
are to the relay ceiling (b) and to the raw ceiling on one connection (a) of the same
run and server.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .paths import PATHS, SPECS

COLUMNS = (
    "path", "rows/s landed", "seconds", "× relay (b)", "× raw 1 conn (a)",
    "Telegraf CPU s", "Telegraf peak RSS MB", "csv2lp CPU s", "csv2lp peak RSS MB",
    "influxd CPU s", "influxd peak RSS MB", "Kafka broker CPU s", "Kafka broker peak RSS MB",
    "dropped", "peak buffer", "count check",
)


def median_run(runs: list[dict]) -> dict:
    """The median complete round (the lower middle of an even number); a failed one if none completed."""
    complete = sorted((r for r in runs if r["seconds"] is not None and r["error"] is None), key=lambda r: r["seconds"])
    if complete:
        return complete[(len(complete) - 1) // 2]
    return runs[0]


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _process(run: dict, role: str, key: str, digits: int) -> str:
    """One process's number; with a second Telegraf (kafka-2's consumers: telegraf, telegraf-2), "first + second"."""
    used = [run["processes"][r] for r in (role, f"{role}-2") if r in run["processes"]]
    return " + ".join(_number(u.get(key), digits) for u in used) if used else "–"


def _check(run: dict, runs: list[dict]) -> str:
    text = run["error"] or run["check"]
    if run["per_series"] == "exact" and not run["error"]:
        text += ", exact per series"
    if len(runs) > 1:
        times = sorted(r["seconds"] for r in runs if r["seconds"] is not None)
        spread = f"{times[0]:.1f}–{times[-1]:.1f} s" if times else "none complete"
        text += f" ({len(runs)} rounds: {spread})"
    return text.replace("|", "\\|")


def server_table(runs: list[dict]) -> str:
    by_path: dict[str, list[dict]] = {}
    for run in runs:
        by_path.setdefault(run["path"], []).append(run)
    chosen = {key: median_run(group) for key, group in by_path.items()}

    def rate(key: str) -> float | None:
        run = chosen.get(key)
        return run["rows_per_second"] if run and not run["error"] else None

    relay, raw = rate("relay"), rate("raw-1")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * (len(COLUMNS) - 2) + "---|"]
    for spec in PATHS:
        if spec.key not in chosen:
            continue
        run = chosen[spec.key]
        speed = run["rows_per_second"] if not run["error"] else None
        telegraf = run.get("telegraf") or {}
        dropped = (f"{telegraf['metrics_dropped']:,}" + (f" ({telegraf['overflow_logged']:,} in log)"
                                                         if telegraf["overflow_logged"] else "")
                   if telegraf else "–")
        peak = f"{telegraf['peak_buffer_size']:,} / {telegraf['buffer_limit']:,}" if telegraf else "–"
        cells = [
            f"{spec.letter}. {spec.label}", _number(speed), _number(run["seconds"], 1),
            f"{speed / relay:.2f}×" if speed and relay else "–", f"{speed / raw:.2f}×" if speed and raw else "–",
            _process(run, "telegraf", "cpu_seconds", 1), _process(run, "telegraf", "peak_rss_mb", 0),
            _process(run, "csv2lp", "cpu_seconds", 1), _process(run, "csv2lp", "peak_rss_mb", 0),
            _process(run, "influxd", "cpu_seconds", 1), _process(run, "influxd", "peak_rss_mb", 0),
            _process(run, "broker", "cpu_seconds", 1), _process(run, "broker", "peak_rss_mb", 0),
            dropped, peak, _check(run, by_path[spec.key]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(results: dict) -> str:
    machine = results["machine"]
    load = machine["load_average"]
    out = [
        f"**{results['rows']:,} generated Movebank rows**, {results['started_at']} – {results['finished_at']}, "
        f"`{results['command']}`",
        "",
        f"{machine['cores']} cores ({machine['cpu_model']}, {machine['memory_gb']:.0f} GB RAM), Python "
        f"{machine['python']}, {machine['telegraf']}; 1-minute load average {load['start']} at the "
        f"start, {load['end']} at the end.",
    ]
    for server in results["servers"]:
        runs = [r for r in results["runs"] if r["server"] == server["kind"]]
        out += ["", f"**Into {server['label']}** ({server['version']})", "", server_table(runs)]
    skipped = [f"{SPECS[key].letter}. {SPECS[key].label}" for key in results.get("skipped", [])]
    if skipped:
        out += ["", "Not run (`--skip`): " + "; ".join(skipped) + "."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest.table", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    print(render(json.loads(args.results.read_text())), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
