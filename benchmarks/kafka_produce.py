"""csv2lp --kafka-brokers against its ceiling, a plain confluent-kafka producer of the same lines.

    python -m benchmarks.kafka_produce [--rows 1000000] [--rounds 3] [--partitions 3]

One real broker (tests/support/kafka.py, the jars of .ci/install-kafka) on this machine; a
generated Movebank CSV (tests/support/movebank_gen.py, 20 animals) and csv2lp's own lines for
it. Each round runs, alternating which goes first, each into a fresh topic:

- raw: benchmarks/raw_produce.py sends csv2lp's lines, grouped by series into 1,000-line
  keyed lz4 messages made before its clock starts (produce until the last acknowledgement);
- csv2lp: `csv2lp FILE --preset movebank --kafka-brokers ... --kafka-topic ...`, timed from
  launch to exit (start-up, reading, converting and producing);
- devnull: `csv2lp FILE --preset movebank -o /dev/null`, the conversion alone.

Every process runs under benchmarks/launch.py (its own CPU seconds and peak RSS); the broker's
CPU seconds per round are read from /proc. The ratio csv2lp / raw is taken within each round.
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


def launched(command: list[str], work: Path, name: str) -> dict:
    out, err = work / f"{name}.out", work / f"{name}.err"
    done = subprocess.run([sys.executable, "-S", str(LAUNCH), "/dev/null", str(out), str(err), "--", *command],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    result = json.loads(done.stdout)
    result["stdout"], result["stderr"] = out.read_text(), err.read_text()
    if result.get("returncode") != 0:
        raise SystemExit(f"{name} failed ({result.get('returncode')}): {result['stderr'][-2000:]}")
    return result


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=3)
    args = parser.parse_args(argv)
    _support()
    from support.kafka import KafkaBroker
    from support.movebank_gen import generate

    work = Path(tempfile.mkdtemp(prefix="csv2lp-kafka-bench-"))
    csv = generate(args.rows, work / "fishers.csv")
    lines = work / "fishers.lp"
    subprocess.run([sys.executable, "-m", "converter", str(csv), "--preset", "movebank", "-o", str(lines), "-q"],
                   check=True, cwd=REPO)
    csv2lp = [sys.executable, "-m", "converter", str(csv), "--preset", "movebank"]
    broker = KafkaBroker()
    broker.start()
    rows: list[dict] = []
    try:
        for number in range(args.rounds):
            order = ["raw", "csv2lp", "devnull"] if number % 2 == 0 else ["csv2lp", "raw", "devnull"]
            for path in order:
                topic = broker.create_topic(f"bench-{uuid.uuid4().hex[:8]}", partitions=args.partitions)
                before = cpu_s(broker.process.pid)
                if path == "raw":
                    run = launched([sys.executable, str(RAW), str(lines), broker.bootstrap_servers, topic],
                                   work, f"raw-{number}")
                    produced = json.loads(run["stdout"])
                    seconds = produced["produce_seconds"]
                elif path == "csv2lp":
                    run = launched([*csv2lp, "--kafka-brokers", broker.bootstrap_servers, "--kafka-topic", topic],
                                   work, f"csv2lp-{number}")
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
    ratios = []
    for number in range(args.rounds):
        by = {row["path"]: row for row in rows if row["round"] == number}
        ratios.append(by["csv2lp"]["lines_per_s"] / by["raw"]["lines_per_s"])
    print(f"\n{args.rows:,} rows, {args.rounds} rounds, {args.partitions} partitions; load {os.getloadavg()[0]:.1f}")
    print("| path | lines/s (median) | CPU s | peak RSS MB | broker CPU s |")
    print("|---|---:|---:|---:|---:|")
    for path in ("raw", "csv2lp", "devnull"):
        mine = [row for row in rows if row["path"] == path]
        print(f"| {path} | {statistics.median(r['lines_per_s'] for r in mine):,.0f} | "
              f"{statistics.median(r['cpu_seconds'] for r in mine):.2f} | "
              f"{statistics.median(r['peak_rss_mb'] for r in mine):.0f} | "
              f"{statistics.median(r['broker_cpu_seconds'] for r in mine):.2f} |")
    print(f"csv2lp / raw per round: {', '.join(f'{r:.2f}x' for r in ratios)}; median {statistics.median(ratios):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
