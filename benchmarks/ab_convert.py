"""Two checkouts' `csv2lp convert` on the same file, alternated round by round.

    python -m benchmarks.ab_convert FILE --before DIR [--after DIR] [--rounds 5] [--out results.json]
        [-- csv2lp options...]   (default: --preset movebank --precision ms)

For a change that must not change speed or output (a layout move, a refactor): each round
runs `before` then `after` (the order swapped every other round) as `python -m converter`
with PYTHONPATH set to that checkout, lines to a temporary file, and records wall seconds,
the child's CPU seconds and peak RSS (getrusage of the waited child), and the SHA-256 of the
lines. Printed: each path's median rows/s, the ratio after/before of the medians, and
whether every output was byte for byte the same. Timings on a shared machine are noisy;
the ratio of medians from alternated rounds is what to quote, with the raw rounds beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .machine import load_average

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OPTIONS = ["--preset", "movebank", "--precision", "ms"]


def one_run(checkout: Path, source: Path, options: list[str], out: Path) -> dict:
    argv = [sys.executable, "-m", "converter", "convert", str(source), *options, "-o", str(out),
            "--summary-json", str(out.with_suffix(".json")), "-q"]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    began = time.perf_counter()
    child = subprocess.Popen(argv, env=env, cwd=out.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if child.returncode not in (0, 3):
        raise SystemExit(f"{checkout}: csv2lp exited {child.returncode}: {stderr.strip()[-500:]}")
    digest = hashlib.sha256()
    with open(out, "rb") as lines:
        for chunk in iter(lambda: lines.read(1 << 20), b""):
            digest.update(chunk)
    summary = json.loads(out.with_suffix(".json").read_text())
    return {"wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "sha256": digest.hexdigest(),
            "rows_read": summary.get("rows_read"), "lines_written": summary.get("lines_written"),
            "load": load_average()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab_convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--before", type=Path, required=True, help="the other checkout (its root folder)")
    parser.add_argument("--after", type=Path, default=REPO, help="default: this checkout")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write every round as JSON here")
    parser.add_argument("options", nargs="*", help="csv2lp options after --")
    # Split at "--" by hand: argparse gives an empty `options` to the first positional it
    # matches and then refuses `FILE -- -m w ...` as unrecognized arguments.
    argv = sys.argv[1:] if argv is None else list(argv)
    own, csv2lp_options = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = parser.parse_args(own)
    options = csv2lp_options or args.options or DEFAULT_OPTIONS
    paths = {"before": args.before.resolve(), "after": args.after.resolve()}
    rounds: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="csv2lp-ab-") as scratch:
        for number in range(args.rounds):
            order = ("before", "after") if number % 2 == 0 else ("after", "before")
            for name in order:
                result = one_run(paths[name], args.file, options, Path(scratch) / f"{name}.lp")
                rounds[name].append(result)
                print(f"round {number + 1} {name}: {result['wall_s']:.2f} s, {result['cpu_s']:.2f} CPU s, "
                      f"{result['peak_rss_mb']:.0f} MB, load {result['load']}", file=sys.stderr)
    rows = rounds["before"][0]["rows_read"]
    medians = {name: statistics.median(r["wall_s"] for r in rs) for name, rs in rounds.items()}
    same = len({r["sha256"] for rs in rounds.values() for r in rs}) == 1
    report = {"file": str(args.file), "options": options, "rows": rows, "paths": {k: str(v) for k, v in paths.items()},
              "median_wall_s": medians, "ratio_after_over_before_rows_per_s": round(medians["before"] / medians["after"], 3),
              "identical_output": same, "rounds": rounds}
    for name in ("before", "after"):
        rs = rounds[name]
        print(f"{name}: median {medians[name]:.2f} s = {rows / medians[name]:,.0f} rows/s, "
              f"CPU {statistics.median(r['cpu_s'] for r in rs):.2f} s, peak RSS "
              f"{max(r['peak_rss_mb'] for r in rs):.0f} MB")
    print(f"after / before (rows/s): {report['ratio_after_over_before_rows_per_s']:.3f}; "
          f"output identical in every round: {same}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
