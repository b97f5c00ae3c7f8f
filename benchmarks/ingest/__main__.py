"""`python -m benchmarks.ingest`: every path into a fresh InfluxDB, on the same rows, timed until counted.

Prints the Markdown table and writes it with the JSON of every round to
benchmarks/results/ingest-ROWS.{json,md} (git-ignored). Exit status 0 when every path
landed every row, exactly per series; 1 otherwise (the table says which and why).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow

from ..datasets import DEFAULT_DATA_DIR
from ..machine import cpu_model, load_average, memory_gb
from . import table
from .inputs import Inputs, prepare
from .paths import PATHS, SPECS, PathRun, find_telegraf_binary, run_path
from .servers import SERVERS, ServerUnavailable, check_available, new_target
from .watch import Watching

HERE = Path(__file__).resolve().parent.parent
SLOW_PATHS = "slow-paths"
KAFKA_PATHS = "kafka-paths"
BASE_TIMEOUT_S = 300.0
SLOWEST_RATE = 1_000  # rows/s: the timeout allows any path at least this (the fixed pace is ~2,195)


def skipped_paths(values: list[str], *, option: str = "--skip") -> list[str]:
    """Path keys from `--skip` (or `--only`) values: keys (execd-disk), letters (g), slow-paths (e, f, g)
    or kafka-paths (i, j)."""
    skipped: list[str] = []
    for value in values:
        for item in filter(None, (part.strip() for part in value.split(","))):
            if item == SLOW_PATHS:
                found = [spec.key for spec in PATHS if spec.slow]
            elif item == KAFKA_PATHS:
                found = [spec.key for spec in PATHS if spec.kafka]
            else:
                found = [spec.key for spec in PATHS if item in (spec.key, spec.letter)]
            if not found:
                raise SystemExit(f"{option} {item}: not a path; give {SLOW_PATHS}, {KAFKA_PATHS}, a letter (a-j) or "
                                 f"one of {', '.join(SPECS)}")
            skipped += [key for key in found if key not in skipped]
    return skipped


def chosen_paths(skip: list[str], only: list[str]) -> tuple[list[str], list[str]]:
    """(the keys to run in PATHS' order, the keys left out): `--only` first, then `--skip` from those."""
    wanted = skipped_paths(only, option="--only") if only else [spec.key for spec in PATHS]
    skipped = skipped_paths(skip)
    keys = [spec.key for spec in PATHS if spec.key in wanted and spec.key not in skipped]
    return keys, [spec.key for spec in PATHS if spec.key not in keys]


def check_kafka_available() -> None:
    """Raise ServerUnavailable unless a Kafka broker can be started here (its jars and Java 17+)."""
    from support.kafka import INSTALL_SCRIPT, KAFKA_VERSION, MIN_JAVA, find_java, find_kafka_lib  # tests/ on sys.path

    if find_kafka_lib() is None:
        raise ServerUnavailable(f"no Kafka {KAFKA_VERSION} broker: run {INSTALL_SCRIPT} (or --skip {KAFKA_PATHS})")
    if find_java() is None:
        raise ServerUnavailable(f"no Java {MIN_JAVA}+ for the Kafka broker (or --skip {KAFKA_PATHS})")


def _version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except OSError as exc:
        return f"unknown ({exc})"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else "unknown"


def _server_info(kind: str) -> dict:
    target = new_target(kind)
    try:
        return {"kind": kind, "label": target.label, "version": _version([str(target.server.influxd), "version"])}
    finally:
        target.server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="generated Movebank rows (default 1,000,000)")
    parser.add_argument("--server", choices=(*SERVERS, "both"), default="v2",
                        help="v2: InfluxDB 2 v2.8.0, the stack's own server (default); v1: InfluxDB 1.6.7; both")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of every path, in alternating order (default 1)")
    parser.add_argument("--skip", action="append", default=[], metavar="PATHS",
                        help=f"paths to leave out: {SLOW_PATHS} (e, f, g: the fixed pace takes ~7.6 min per "
                             f"million rows), {KAFKA_PATHS} (i, j: a Kafka broker per path, InfluxDB 2 only), "
                             f"letters a-j or keys ({', '.join(SPECS)}); comma-separated or repeated")
    parser.add_argument("--only", action="append", default=[], metavar="PATHS",
                        help="run only these paths (the same names as --skip), e.g. --only b,kafka-paths")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="folder for the generated CSV (kept)")
    parser.add_argument("--results", type=Path, default=HERE / "results", help="folder for the JSON and the table")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (configs, logs, spool)")
    parser.add_argument("--count-from-start", action="store_true",
                        help="poll count() from each path's start, not only once the writer has every row "
                             "acknowledged (the same clock; the counts load the server while it stores)")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.rounds < 1:
        parser.error("--rows and --rounds must be at least 1")
    keys, skipped = chosen_paths(args.skip, args.only)
    kinds = list(SERVERS) if args.server == "both" else [args.server]
    try:
        for kind in kinds:
            check_available(kind)
        if any(SPECS[key].kafka for key in keys) and "v2" in kinds:
            check_kafka_available()
    except ServerUnavailable as exc:
        print(f"python -m benchmarks.ingest: {exc}", file=sys.stderr)
        return 2

    command = "python -m benchmarks.ingest " + shlex.join(argv if argv is not None else sys.argv[1:])
    started_at = dt.datetime.now().isoformat(timespec="seconds")
    load_start = load_average()
    workdir = Path(tempfile.mkdtemp(prefix="csv2lp-ingest-"))
    runs: list[PathRun] = []
    try:
        print(f"making the inputs ({args.rows:,} rows) in {args.data} and {workdir} ...", file=sys.stderr)
        inputs = prepare(args.rows, args.data, workdir)
        watching = Watching(BASE_TIMEOUT_S + inputs.rows / SLOWEST_RATE, count_from_start=args.count_from_start)
        for kind in kinds:
            for round_number in range(args.rounds):
                order = keys if round_number % 2 == 0 else keys[::-1]
                for key in order:
                    if SPECS[key].kafka and kind != "v2":
                        continue  # telegraf/kafka-consumer.conf writes with outputs.influxdb_v2
                    runs.append(_one(key, kind, round_number, inputs, workdir, watching, keep=args.keep))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    results = {
        "rows": args.rows,
        "command": command,
        "started_at": started_at,
        "finished_at": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "cpu_model": cpu_model(),
            "memory_gb": memory_gb() or 0.0,
            "python": platform.python_version(),
            "pyarrow": pyarrow.__version__,
            "telegraf": _telegraf_version(),
            "load_average": {"start": load_start, "end": load_average()},
        },
        "servers": [_server_info(kind) for kind in kinds],
        "count_from_start": args.count_from_start,
        "skipped": skipped,
        "runs": [run.as_dict() for run in runs],
    }
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"ingest-{args.rows}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    text = table.render(results)
    stem.with_suffix(".md").write_text(text)
    print(text)
    print(f"written: {stem}.json, {stem}.md", file=sys.stderr)
    return 0 if all(run.error is None for run in runs) else 1


def _one(key: str, kind: str, round_number: int, inputs: Inputs, workdir: Path, watching: Watching, *,
         keep: bool) -> PathRun:
    run = PathRun(key, kind, round_number, inputs.rows)
    folder = workdir / f"{kind}-{round_number}-{key}"
    target = new_target(kind)
    began = time.monotonic()
    try:
        target.start()
        run_path(key, run, target, inputs, folder, watching=watching)
    except Exception as exc:  # noqa: BLE001 - one path failing is a row of the table, not the end of the run
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        target.close()
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    rate = f"{run.rows_per_second:,.0f} rows/s" if run.rows_per_second and not run.error else run.error
    print(f"  {kind} round {round_number + 1} {SPECS[key].letter}. {key}: {rate} "
          f"({time.monotonic() - began:.0f} s with the server's start and stop)", file=sys.stderr)
    return run


def _telegraf_version() -> str:
    binary = find_telegraf_binary()
    return _version([str(binary), "version"]) if binary else "not installed"


if __name__ == "__main__":
    sys.exit(main())
