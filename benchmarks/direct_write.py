"""`csv2lp --influx-url` against the database's own ceiling, measured in ONE run on the same rows.

    python -m benchmarks.direct_write                      # InfluxDB 2 (the built influxd), 1M rows, 3 rounds
    python -m benchmarks.direct_write --server influxdb1   # Debian's InfluxDB 1.6.7
    python -m benchmarks.direct_write --size quick --rounds 1

The paths, each run as its own process through launch.py (its CPU seconds and peak RSS are
its own), each into a fresh bucket (1.x: database), timed from its launch until the
database counts every point:

| path       | what runs                                                                          |
|------------|------------------------------------------------------------------------------------|
| `raw-1`    | raw_post.py: csv2lp's lines for the file, ready-made in gzip'd bodies of 5,000 lines (level 1, as csv2lp sends them), POSTed on 1 connection: the database's ceiling |
| `raw-2`    | the same on 2 connections                                                          |
| `raw-plain-1` | the same lines in bodies without gzip, 1 connection                             |
| `csv2lp`   | `csv2lp FILE --preset movebank --precision ms --influx-url URL ...`: the defaults, 2 connections, no gzip to a loopback address |
| `csv2lp-gzip` | the same with `--gzip`, as it writes to a server on another machine             |
| `csv2lp-1` | the same with `--connections 1` (and no gzip)                                      |
| `before`   | with `--before DIR`: the same command run from another checkout of csv2lp (e.g. the one before this sink) |

Every round runs every path, in an order that rotates from round to round, so that a
ratio compares runs that saw the same load on a shared machine; the server also runs on
this machine and its CPU seconds per run are read from /proc. InfluxDB 2 answers a write
only once its points are queryable; 1.6.7 can count short for a while after acknowledged
writes (influxdata/influxdb#8169), so a short count is polled (bounded) and, if still
short, re-counted after a restart of the server: the run then says so.

`measure_direct_writes()` is the reusable part: give it a `Target` (a running server that
makes fresh buckets) and a CSV, get one `Run` per path and round. The end-to-end ingest
benchmark can call it with its own servers and files.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .datasets import DEFAULT_DATA_DIR, SIZES, Dataset, make

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LAUNCHER = HERE / "launch.py"
RAW_POST = HERE / "raw_post.py"
LINES_PER_BODY = 5_000
GZIP_LEVEL = 1  # converter/sinks/influxdb/sender.py
PRECISION = "ms"
PATHS = ("raw-1", "raw-2", "raw-plain-1", "csv2lp", "csv2lp-gzip", "csv2lp-1")
COUNT_TIMEOUT_S = 120.0
LABELS = {
    "raw-1": "raw gzip'd POST, 5,000 lines/request, 1 connection (ceiling)",
    "raw-2": "raw gzip'd POST, 5,000 lines/request, 2 connections",
    "raw-plain-1": "raw POST without gzip, 5,000 lines/request, 1 connection",
    "csv2lp": "csv2lp --influx-url (CSV in; defaults: 2 connections, no gzip to loopback)",
    "csv2lp-gzip": "csv2lp --influx-url --gzip",
    "csv2lp-1": "csv2lp --influx-url --connections 1",
    "before": "csv2lp --influx-url of the checkout given by --before",
}


@dataclass
class Bucket:
    """A fresh place to write to, and how each path reaches it."""

    name: str
    write_path: str  # path and query of a raw write request
    csv2lp_args: list[str]
    env: dict[str, str]  # secrets for csv2lp (INFLUX_*) and raw_post.py (RAW_POST_AUTH)
    count: Callable[[], int]
    drop: Callable[[], None]


@dataclass
class Target:
    """A running server: its URL, its process (for CPU seconds), fresh buckets, a restart."""

    label: str
    url: str
    pid: Callable[[], int]
    fresh_bucket: Callable[[str], Bucket]
    restart: Callable[[], None]


@dataclass
class Run:
    path: str
    round: int
    rows: int
    landed_s: float  # launch until the database counted every point
    process_s: float
    cpu_s: float  # user + system of the writing process
    max_rss_mb: float
    server_cpu_s: float
    counted: int
    note: str = ""
    error: str | None = None

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.landed_s if self.landed_s > 0 else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "rows_per_s": round(self.rows_per_s)}


@dataclass
class Summary:
    target: str
    dataset: str
    rows: int
    runs: list[Run] = field(default_factory=list)

    def by_path(self, path: str) -> list[Run]:
        return [run for run in self.runs if run.path == path and run.error is None]

    def ratio(self, path: str, ceiling: str = "raw-1") -> float | None:
        """Median over rounds of (path's rows/s) / (ceiling's rows/s) in the same round."""
        ratios = []
        for number in {run.round for run in self.runs}:
            a = [r for r in self.by_path(path) if r.round == number]
            b = [r for r in self.by_path(ceiling) if r.round == number]
            if a and b:
                ratios.append(a[0].rows_per_s / b[0].rows_per_s)
        return statistics.median(ratios) if ratios else None


# -- the measurement ------------------------------------------------------------------------------


def measure_direct_writes(target: Target, data: Dataset, *, rounds: int, work_dir: Path,
                          paths: Sequence[str] = PATHS, progress: Callable[[str], None] = print,
                          before: Path | None = None) -> Summary:
    """Every path of `paths`, `rounds` times, alternating (see the module docstring); `before`
    is the checkout the `before` path runs."""
    work_dir.mkdir(parents=True, exist_ok=True)
    bodies = {gzip: prepare_bodies(data, work_dir, gzip=gzip) for gzip in (True, False)}
    summary = Summary(target.label, data.label, data.rows)
    for number in range(rounds):
        shift = number % len(paths)
        for path in [*paths[shift:], *paths[:shift]]:
            run = one_run(target, path, number, data, bodies, work_dir, before)
            summary.runs.append(run)
            progress(f"round {number + 1}/{rounds} {path:9s} {run.rows_per_s:>10,.0f} rows/s landed "
                     f"({run.landed_s:.2f} s; process {run.process_s:.2f} s, {run.cpu_s:.2f} CPU s, "
                     f"{run.max_rss_mb:.0f} MB; server {run.server_cpu_s:.2f} CPU s){' ' + run.note if run.note else ''}"
                     f"{' ERROR ' + run.error if run.error else ''}")
    return summary


def prepare_bodies(data: Dataset, work_dir: Path, *, gzip: bool = True) -> Path:
    """csv2lp's lines for the file in (gzip'd) bodies of LINES_PER_BODY lines (made once, kept)."""
    bodies = work_dir / f"{data.path.stem}-{PRECISION}-{LINES_PER_BODY}{'' if gzip else '-plain'}.bodies"
    if bodies.exists() and bodies.stat().st_mtime >= data.path.stat().st_mtime:
        return bodies
    done = subprocess.run([sys.executable, "-m", "converter", "convert", str(data.path), "--preset", "movebank",
                           "--precision", PRECISION, "-q"], cwd=REPO, capture_output=True, check=True)
    lines = done.stdout.splitlines(keepends=True)
    if len(lines) != data.rows:
        raise RuntimeError(f"csv2lp made {len(lines):,} lines of {data.rows:,} rows")
    partial = bodies.with_suffix(".partial")
    with open(partial, "wb") as out:
        for start in range(0, len(lines), LINES_PER_BODY):
            body = b"".join(lines[start:start + LINES_PER_BODY])
            if gzip:
                deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
                body = deflate.compress(body) + deflate.flush()
            out.write(struct.pack("<Q", len(body)) + body)
    partial.rename(bodies)
    return bodies


def one_run(target: Target, path: str, number: int, data: Dataset, bodies: dict[bool, Path], work_dir: Path,
            before: Path | None = None) -> Run:
    bucket = target.fresh_bucket(f"bench_{path.replace('-', '_')}_{uuid.uuid4().hex[:8]}")
    if path.startswith("raw-"):
        plain = path.startswith("raw-plain")
        command = [sys.executable, "-S", str(RAW_POST), str(bodies[not plain]), bucket.write_path, target.url,
                   "--connections", path.rsplit("-", 1)[1], *(["--plain"] if plain else [])]
    else:
        command = [sys.executable, "-m", "converter", "convert", str(data.path), "--preset", "movebank",
                   "--precision", PRECISION, "--no-progress", *bucket.csv2lp_args]
        command += {"csv2lp-1": ["--connections", "1"], "csv2lp-gzip": ["--gzip"]}.get(path, [])
    tree = before if path == "before" and before is not None else REPO
    stdout, stderr = work_dir / f"{path}.out", work_dir / f"{path}.err"
    server_cpu = process_cpu_s(target.pid())
    began = time.perf_counter()
    launched = subprocess.run([sys.executable, "-S", str(LAUNCHER), os.devnull, str(stdout), str(stderr), "--",
                               *command], capture_output=True, text=True, cwd=tree,
                              env={**os.environ, "PYTHONPATH": str(tree), **bucket.env})
    result = json.loads(launched.stdout)
    error = result.get("error") or (None if result["returncode"] == 0 else
                                    f"exit {result['returncode']}: {stderr.read_text()[-500:].strip()}")
    counted, landed, note = wait_for_count(target, bucket, data.rows, began)
    run = Run(path, number, data.rows, landed, result.get("wall_seconds", 0.0),
              result.get("user_seconds", 0.0) + result.get("system_seconds", 0.0),
              result.get("max_rss_kb", 0) / 1024, process_cpu_s(target.pid()) - server_cpu, counted, note, error)
    bucket.drop()
    return run


def wait_for_count(target: Target, bucket: Bucket, expected: int, began: float) -> tuple[int, float, str]:
    """(count, seconds from `began` to the start of the query that counted everything, note)."""
    deadline = time.monotonic() + COUNT_TIMEOUT_S
    while True:
        asked = time.perf_counter()
        counted = bucket.count()
        if counted >= expected:
            return counted, asked - began, ""
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    # 1.6.7 can count short after acknowledged writes; after a restart the count is complete.
    target.restart()
    recounted = bucket.count()
    note = (f"counted {counted:,} for {COUNT_TIMEOUT_S:.0f} s, {recounted:,} after a restart of the server: "
            "no time for this run")
    return recounted, float("inf"), note


def process_cpu_s(pid: int) -> float:
    """utime + stime of a process, from /proc (0 when it is not there)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the servers, from the test fixtures -----------------------------------------------------------


def _support():
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


def influxdb2_target_of(server) -> Target:
    """A Target over a running tests/support/influxdb2.py server (the fixture's, or our own)."""
    _support()
    from support.influxdb2 import ORG, TOKEN

    def fresh(name: str) -> Bucket:
        server.create_bucket(name)

        def count() -> int:
            series = server.influxql('SELECT count("event_id") FROM "movebank"', name)[0].get("series", [])
            return int(series[0]["values"][0][1]) if series else 0

        return Bucket(name, f"/api/v2/write?org={ORG}&bucket={name}&precision={PRECISION}",
                      ["--influx-url", server.url, "--org", ORG, "--bucket", name],
                      {"INFLUX_TOKEN": TOKEN, "RAW_POST_AUTH": f"Token {TOKEN}"}, count,
                      lambda: server.delete_bucket(name))

    done = subprocess.run([str(server.influxd), "version"], capture_output=True, text=True)
    version = (done.stdout.split() or ["", "2"])[1]
    return Target(f"InfluxDB {version} (influxd built by .ci/install-influxd2)", server.url,
                  lambda: server.process.pid if server.process else 0, fresh, server.restart)


def influxdb1_target_of(server) -> Target:
    """A Target over a running tests/support/influxdb.py server (auth off)."""

    def fresh(name: str) -> Bucket:
        server.create_database(name)

        def count() -> int:
            series = server.query('SELECT count("event_id") FROM "movebank"', db=name)[0].get("series", [])
            return int(series[0]["values"][0][1]) if series else 0

        return Bucket(name, f"/write?db={name}&precision={PRECISION}", ["--influx-url", server.url, "--bucket", name],
                      {}, count, lambda: server.drop_database(name))

    def restart() -> None:
        server.stop()
        server.start()

    return Target("InfluxDB 1.6.7 (Debian's influxd)", server.url,
                  lambda: server.process.pid if server.process else 0, fresh, restart)


@contextmanager
def influxdb2_target() -> Iterator[Target]:
    """A server of our own for the run: started here, stopped and deleted afterwards."""
    _support()
    from support.influxdb2 import InfluxDB2Server, find_influxd2_binary

    binary = find_influxd2_binary()
    if binary is None:
        raise SystemExit("no influxd (InfluxDB 2) binary: run .ci/install-influxd2")
    server = InfluxDB2Server(influxd=binary)
    server.start()
    try:
        yield influxdb2_target_of(server)
    finally:
        server.close()


@contextmanager
def influxdb1_target() -> Iterator[Target]:
    _support()
    from support.influxdb import InfluxDB1Server

    server = InfluxDB1Server()
    server.start()
    try:
        yield influxdb1_target_of(server)
    finally:
        server.close()


# -- the report ------------------------------------------------------------------------------------


def table(summary: Summary) -> str:
    rows = [f"**{summary.target}**, {summary.dataset}, precision {PRECISION}, {LINES_PER_BODY:,} lines per request",
            "",
            "| path | rows/s landed (median) | best | × raw 1 conn | × raw 2 conn | process CPU s | peak RSS MB "
            "| server CPU s | rounds |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for path in [*PATHS, "before"]:
        runs = summary.by_path(path)
        if not runs:
            continue
        rates = [r.rows_per_s for r in runs]
        ratios = [summary.ratio(path, ceiling) for ceiling in ("raw-1", "raw-2")]
        shown = ["–" if ratio is None else f"{ratio:.2f}×" for ratio in ratios]
        rows.append(
            f"| {LABELS[path]} | {statistics.median(rates):,.0f} | {max(rates):,.0f} | {shown[0]} | {shown[1]} | "
            f"{statistics.median(r.cpu_s for r in runs):.2f} | "
            f"{max(r.max_rss_mb for r in runs):.0f} | {statistics.median(r.server_cpu_s for r in runs):.2f} | "
            f"{', '.join(f'{r.landed_s:.2f} s' for r in runs)} |")
    notes = [f"- round {r.round + 1} {r.path}: {r.note or r.error}" for r in summary.runs if r.note or r.error]
    return "\n".join(rows + ([""] + notes if notes else []))


def _commit(tree: Path) -> str:
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "an unknown commit"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.direct_write", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=("influxdb2", "influxdb1"), default="influxdb2")
    parser.add_argument("--size", choices=sorted(SIZES), default="full", help="the `base` dataset's size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"comma-separated, of {', '.join(PATHS)} (and before, with --before)")
    parser.add_argument("--before", type=Path, help="another checkout of csv2lp, run as the path `before`")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    data = make("base", SIZES[args.size], args.data)
    load = os.getloadavg()[0]
    paths = args.paths.split(",") + (["before"] if args.before and "before" not in args.paths else [])
    with (influxdb2_target() if args.server == "influxdb2" else influxdb1_target()) as target:
        summary = measure_direct_writes(target, data, rounds=args.rounds, work_dir=args.data / "direct-write",
                                        paths=paths, before=args.before)
    text = table(summary) + f"\n\n1-minute load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end."
    if args.before:
        text += f" `before`: {args.before} at {_commit(args.before)}."
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"direct-write-{args.server}-{args.size}"
    stem.with_suffix(".json").write_text(json.dumps({"target": summary.target, "dataset": summary.dataset,
                                                     "runs": [r.as_dict() for r in summary.runs]}, indent=2))
    stem.with_suffix(".md").write_text(text + "\n")
    print()
    print(text)
    return 0 if all(r.error is None for r in summary.runs) else 1


if __name__ == "__main__":
    sys.exit(main())
