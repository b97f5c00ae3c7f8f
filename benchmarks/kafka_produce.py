"""csv2lp --kafka-brokers against its ceiling, a plain confluent-kafka producer of the same lines.

    python -m benchmarks.kafka_produce [--rows 1000000] [--rounds 3] [--partitions 3]
                                       [--input ingest|wide] [--before DIR] [--json FILE]

One real broker (tests/support/kafka.py, the jars of .ci/install-kafka) on this machine; a
generated Movebank CSV and csv2lp's own lines for it. `--input ingest` (the default) is the CSV
every path of `python -m benchmarks.ingest` reads (benchmarks/generate.py: the fishers file's
shape, its empty cells included, ~144 bytes a row); `--input wide` is the tests' generator
(tests/support/movebank_gen.py, 20 animals, every sensor column filled, ~195 bytes a row, lines
of ~378 bytes), which costs the converter about twice as much per row. Each round runs,
alternating which goes first, each into a fresh topic:

- raw: benchmarks/raw_produce.py sends csv2lp's lines, grouped by series into 1,000-line
  keyed lz4 messages made before its clock starts (produce until the last acknowledgement);
- csv2lp: `csv2lp FILE --preset movebank --kafka-brokers ... --kafka-topic ...`, timed from
  launch to exit (start-up, reading, converting and producing);
- devnull: `csv2lp FILE --preset movebank -o /dev/null`, the conversion alone;
- before (with --before DIR, a checkout of another commit, e.g. `git worktree add DIR 83f1c2e`):
  the csv2lp path run from DIR's code, for a before/after in the same run.

Every process runs under benchmarks/launch.py (its own CPU seconds and peak RSS); the broker's
CPU seconds per round are read from /proc. The ratio csv2lp / raw is taken within each round;
so is csv2lp / devnull (1.0: producing costs the run nothing beyond converting). raw's CPU
seconds are its produce window's (produce_cpu_seconds), not its reading of the lines.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAUNCH = REPO / "benchmarks" / "launch.py"
RAW = REPO / "benchmarks" / "raw_produce.py"


def _support():
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


def launched(command: list[str], work: Path, name: str, *, code: Path = REPO) -> dict:
    """Run `command` under launch.py; `python -m converter` there loads the converter of `code`
    (the working directory comes first on sys.path, PYTHONPATH is set to it too)."""
    out, err = work / f"{name}.out", work / f"{name}.err"
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, "-S", str(LAUNCH), "/dev/null", str(out), str(err), "--", *command],
                          capture_output=True, text=True, timeout=900, cwd=code, env=env)
    result = json.loads(done.stdout)
    result["stdout"], result["stderr"] = out.read_text(), err.read_text()
    if result.get("returncode") != 0:
        raise SystemExit(f"{name} failed ({result.get('returncode')}): {result['stderr'][-2000:]}")
    return result


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _input(kind: str, rows: int, work: Path) -> Path:
    if kind == "wide":
        from support.movebank_gen import generate

        return generate(rows, work / "fishers.csv")
    from .datasets import generated

    return generated("ingest", rows, work).path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--input", choices=("ingest", "wide"), default="ingest",
                        help="ingest: benchmarks.ingest's CSV (default); wide: the tests' generator")
    parser.add_argument("--before", type=Path, help="a checkout of another commit: its csv2lp runs too")
    parser.add_argument("--json", type=Path, help="write every row and the medians here")
    args = parser.parse_args(argv)
    paths = ["raw", "csv2lp", "devnull"] + (["before"] if args.before else [])
    _support()
    from support.kafka import KafkaBroker

    work = Path(tempfile.mkdtemp(prefix="csv2lp-kafka-bench-"))
    csv = _input(args.input, args.rows, work)
    lines = work / "fishers.lp"
    subprocess.run([sys.executable, "-m", "converter", str(csv), "--preset", "movebank", "-o", str(lines), "-q"],
                   check=True, cwd=REPO)
    csv2lp = [sys.executable, "-m", "converter", str(csv), "--preset", "movebank"]
    broker = KafkaBroker()
    broker.start()
    rows: list[dict] = []
    try:
        for number in range(args.rounds):
            # Alternated: every path goes first in some round (the load of the box drifts).
            order = paths[number % len(paths):] + paths[:number % len(paths)]
            for path in order:
                topic = broker.create_topic(f"bench-{uuid.uuid4().hex[:8]}", partitions=args.partitions)
                before = cpu_s(broker.process.pid)
                if path == "raw":
                    run = launched([sys.executable, str(RAW), str(lines), broker.bootstrap_servers, topic],
                                   work, f"raw-{number}")
                    produced = json.loads(run["stdout"])
                    seconds = produced["produce_seconds"]
                    run["user_seconds"], run["system_seconds"] = produced["produce_cpu_seconds"], 0.0
                elif path in ("csv2lp", "before"):
                    run = launched([*csv2lp, "--kafka-brokers", broker.bootstrap_servers, "--kafka-topic", topic],
                                   work, f"{path}-{number}", code=args.before if path == "before" else REPO)
                    seconds = run["wall_seconds"]
                else:
                    run = launched([*csv2lp, "-o", "/dev/null"], work, f"devnull-{number}")
                    seconds = run["wall_seconds"]
                rows.append({"round": number, "path": path, "seconds": seconds, "lines_per_s": args.rows / seconds,
                             "wall_seconds": run["wall_seconds"],
                             "cpu_seconds": run["user_seconds"] + run["system_seconds"],
                             "peak_rss_mb": run["max_rss_kb"] / 1024,
                             "broker_cpu_seconds": cpu_s(broker.process.pid) - before})
                print(json.dumps(rows[-1]), flush=True)
                broker.delete_topic(topic)
    finally:
        broker.stop()
    summary = _summary(rows, paths, args)
    print(f"\n{args.rows:,} rows ({args.input}), {args.rounds} rounds, {args.partitions} partitions; "
          f"load {os.getloadavg()[0]:.1f}")
    print("| path | lines/s (median) | CPU s | peak RSS MB | broker CPU s |")
    print("|---|---:|---:|---:|---:|")
    for path in paths:
        median = summary["medians"][path]
        print(f"| {path} | {median['lines_per_s']:,.0f} | {median['cpu_seconds']:.2f} | {median['peak_rss_mb']:.0f} | "
              f"{median['broker_cpu_seconds']:.2f} |")
    for name, ratios in summary["ratios"].items():
        print(f"{name} per round: {', '.join(f'{r:.2f}x' for r in ratios)}; median {statistics.median(ratios):.2f}x")
    if args.json:
        args.json.write_text(json.dumps({**summary, "rows": rows}, indent=1) + "\n")
    return 0


def _summary(rows: list[dict], paths: list[str], args: argparse.Namespace) -> dict:
    def per_round(a: str, b: str) -> list[float]:
        out = []
        for number in range(args.rounds):
            by = {row["path"]: row for row in rows if row["round"] == number}
            out.append(by[a]["lines_per_s"] / by[b]["lines_per_s"])
        return out

    medians = {path: {key: statistics.median(r[key] for r in rows if r["path"] == path)
                      for key in ("lines_per_s", "cpu_seconds", "peak_rss_mb", "broker_cpu_seconds")}
               for path in paths}
    ratios = {"csv2lp / raw": per_round("csv2lp", "raw"), "csv2lp / devnull": per_round("csv2lp", "devnull")}
    if "before" in paths:
        ratios["before / raw"] = per_round("before", "raw")
        ratios["csv2lp / before"] = per_round("csv2lp", "before")
    return {"rows_per_run": args.rows, "input": args.input, "rounds": args.rounds, "partitions": args.partitions,
            "load_at_end": os.getloadavg()[0], "medians": medians, "ratios": ratios}


if __name__ == "__main__":
    sys.exit(main())
