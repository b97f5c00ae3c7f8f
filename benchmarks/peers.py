"""The peers of the benchmark, and one measured run of any of them.

| peer       | what runs                                                                   |
|------------|-----------------------------------------------------------------------------|
| `read_csv` | `pyarrow.csv.read_csv(path)` alone, no output: the ceiling for an Arrow reader |
| `csv2lp`   | the `csv2lp` CLI: `--preset movebank -o /dev/null`                          |
| `tutorial` | `csv.DictReader` + an influxdb-client `Point` per row, lines to /dev/null   |
| `pandas`   | `pandas.read_csv` in chunks + influxdb-client `DataframeSerializer`         |
| `telegraf` | the real Telegraf: `inputs.file` + `data_format = "csv"` -> `outputs.file` /dev/null, `--once` |
| `influx`   | `influx write dryrun --format csv` with the annotations as `--header` lines |
| `influx_csv2lp` | InfluxData's pkg/csv2lp, what `influx write` runs on CSV (.ci/install-annotated-ref) |

Every run is its own process, started by `launch.py`, so its peak RSS is its own. Two
times come back: the process wall time (start-up included) and the work time, which is
the conversion alone: for the Python peers a clock around the work inside the process
(after the imports); for csv2lp its own `--summary-json` seconds; for the external
binaries (Telegraf, influx, pkg/csv2lp) the wall time minus their start-up, measured by the same
command on a one-row file.

Run a Python peer by hand: `python -m benchmarks.peers tutorial FILE.csv --result r.json`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAUNCHER = Path(__file__).resolve().parent / "launch.py"
# The binaries .ci/install-telegraf and .ci/install-influx-cli build, as tests/ finds them.
BIN_DIR = Path(os.environ.get("CSV2LP_BIN_DIR") or Path.home() / ".cache" / "csv2lp-bin")
TELEGRAF_BIN = BIN_DIR / "telegraf"
ANNOTATED_REF_BIN = BIN_DIR / "annotated-ref"
INFLUX_MISSING = (
    f"no influx CLI on PATH or in {BIN_DIR}: .ci/install-influx-cli cannot build it here (the Go "
    "module proxy answers 403 for github.com/influxdata/influx-cli)"
)

PYTHON_PEERS = ("read_csv", "tutorial", "pandas")
ALL_PEERS = ("read_csv", "csv2lp", "tutorial", "pandas", "telegraf", "influx", "influx_csv2lp")
LABELS = {
    "read_csv": "pyarrow.csv.read_csv alone (ceiling)",
    "csv2lp": "csv2lp CLI -> /dev/null",
    "tutorial": "csv.DictReader + influxdb-client Point per row",
    "pandas": "pandas + influxdb-client DataframeSerializer",
    "telegraf": "Telegraf CSV parser (inputs.file -> outputs.file)",
    "influx": "influx write dryrun (annotated CSV)",
    "influx_csv2lp": "influx write's CSV converter, pkg/csv2lp (annotated CSV)",
}

# ---------------------------------------------------------------------------------------
# The Movebank mapping, spelled out by hand the way a tutorial script does: the same
# measurement, tags, keys and types as csv2lp's movebank preset, so every peer writes the
# same points.
MEASUREMENT = "movebank"
TAGS = {
    "study-name": "study",
    "individual-local-identifier": "individual",
    "tag-local-identifier": "tag",
    "individual-taxon-canonical-name": "taxon",
    "sensor-type": "sensor",
}
RENAMED = {"location-lat": "lat", "location-long": "lon", "event-id": "event_id"}
INTEGER_COLUMNS = {
    "event-id", "eobs:battery-voltage", "eobs:fix-battery-voltage", "eobs:key-bin-checksum",
    "eobs:type-of-fix", "eobs:used-time-to-get-fix", "gps:satellite-count",
}
BOOLEAN_COLUMNS = {"visible", "manually-marked-outlier", "algorithm-marked-outlier", "import-marked-outlier"}
STRING_COLUMNS = {"behavioural-classification", "comments", "eobs:status", "eobs:start-timestamp"}
TIME_COLUMN = "timestamp"
TIME_LAYOUT_GO = "2006-01-02 15:04:05.000"  # Movebank's yyyy-MM-dd HH:mm:ss.SSS, in Go's notation


def field_key(column: str) -> str:
    return RENAMED.get(column) or re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")


def _boolean(text: str) -> bool:
    return text.lower() == "true"


def field_converter(column: str):
    if column in INTEGER_COLUMNS:
        return int
    if column in BOOLEAN_COLUMNS:
        return _boolean
    if column in STRING_COLUMNS:
        return str
    return float


@dataclass
class Measurement:
    """One run of one peer."""

    lines: int | None             # lines written (rows converted); None when unknown
    work_seconds: float | None    # the conversion alone (see the module docstring)
    process_seconds: float        # the whole process, start-up included
    max_rss_kb: int
    rejected: int = 0
    error: str | None = None      # the peer failed; `lines` is how far it got
    rss_floor_kb: int = 0         # max_rss_kb cannot be lower than this (launch.py's own peak)

    def as_dict(self) -> dict:
        return asdict(self)


class Unavailable(Exception):
    """The peer cannot run on this machine; the message is the reason."""


# ---------------------------------------------------------------------------------------
# The Python peers: they run inside `python -m benchmarks.peers NAME ...`, and count the
# lines they wrote in `done` so a failure can say how far it got.


class Done:
    lines = 0


def peer_read_csv(path: str, output: str, done: Done) -> None:
    import pyarrow.csv

    done.lines = pyarrow.csv.read_csv(path).num_rows


def peer_tutorial(path: str, output: str, done: Done) -> None:
    from influxdb_client import Point, WritePrecision

    with open(path, newline="", encoding="utf-8") as source, open(output, "w", encoding="utf-8") as out:
        reader = csv.DictReader(source)
        fields = [(c, field_key(c), field_converter(c)) for c in reader.fieldnames or []
                  if c not in TAGS and c != TIME_COLUMN]
        for row in reader:
            point = Point(MEASUREMENT)
            for column, key in TAGS.items():
                if row.get(column):
                    point.tag(key, row[column])
            for column, key, convert in fields:
                value = row[column]
                if value != "":  # failed fixes have no coordinates: a bare float('') would crash
                    point.field(key, convert(value))
            stamp = datetime.fromisoformat(row[TIME_COLUMN]).replace(tzinfo=timezone.utc)
            point.time(stamp, WritePrecision.NS)
            out.write(point.to_line_protocol())
            out.write("\n")
            done.lines += 1


PANDAS_CHUNK_ROWS = 100_000


def peer_pandas(path: str, output: str, done: Done) -> None:
    import pandas as pd
    from influxdb_client.client.write.dataframe_serializer import DataframeSerializer
    from influxdb_client.client.write_api import PointSettings

    tag_keys = list(TAGS.values())
    with open(output, "w", encoding="utf-8") as out:
        for chunk in pd.read_csv(path, chunksize=PANDAS_CHUNK_ROWS):
            chunk.index = pd.to_datetime(chunk.pop(TIME_COLUMN), format="%Y-%m-%d %H:%M:%S.%f", utc=True)
            chunk = chunk.rename(columns={c: TAGS.get(c) or field_key(c) for c in chunk.columns})
            serializer = DataframeSerializer(chunk, PointSettings(), data_frame_measurement_name=MEASUREMENT,
                                             data_frame_tag_columns=tag_keys)
            lines = serializer.serialize()
            if lines:
                out.write("\n".join(lines))
                out.write("\n")
            done.lines += len(lines)


PYTHON_PEER_FUNCTIONS = {"read_csv": peer_read_csv, "tutorial": peer_tutorial, "pandas": peer_pandas}


def _python_peer_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers")
    parser.add_argument("peer", choices=sorted(PYTHON_PEER_FUNCTIONS))
    parser.add_argument("input")
    parser.add_argument("--result", required=True, help="JSON file for lines, work_seconds, error")
    parser.add_argument("--output", default=os.devnull)
    args = parser.parse_args(argv)
    function = PYTHON_PEER_FUNCTIONS[args.peer]
    done = Done()
    error = None
    started = time.perf_counter()
    try:
        function(args.input, args.output, done)
    except Exception as exc:  # noqa: BLE001 - a peer's failure is a result to report
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    Path(args.result).write_text(json.dumps({"lines": done.lines, "work_seconds": seconds, "error": error}))
    return 1 if error else 0


# ---------------------------------------------------------------------------------------
# Running a peer as a measured process.


@dataclass
class Launched:
    wall_seconds: float
    max_rss_kb: int
    returncode: int
    stdout: Path
    stderr: Path
    rss_floor_kb: int = 0
    cpu_seconds: float = 0.0  # user + system


def launch(command: list[str], workdir: Path, name: str, *, stdin: Path | None = None,
           env: dict[str, str] | None = None) -> Launched:
    """Run `command` under launch.py; its stdout and stderr land in workdir/name.{out,err}.

    `env` adds to (or overrides) this process's environment for the command."""
    stdout, stderr = workdir / f"{name}.out", workdir / f"{name}.err"
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    files = [str(stdin or os.devnull), str(stdout), str(stderr)]
    done = subprocess.run([sys.executable, "-S", str(LAUNCHER), *files, "--", *command],
                          env=env, capture_output=True, text=True, check=True, cwd=workdir)
    report = json.loads(done.stdout)
    if "error" in report:
        raise Unavailable(report["error"])
    return Launched(report["wall_seconds"], report["max_rss_kb"], report["returncode"], stdout, stderr,
                    report["rss_floor_kb"], report["user_seconds"] + report["system_seconds"])


def _measured(run: Launched, lines: int | None, work_seconds: float | None, *, rejected: int = 0,
              error: str | None = None) -> Measurement:
    return Measurement(lines, work_seconds, run.wall_seconds, run.max_rss_kb, rejected=rejected, error=error,
                       rss_floor_kb=run.rss_floor_kb)


def _tail(path: Path, lines: int = 2) -> str:
    text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return " / ".join(line.strip() for line in text[-lines:])


def run_python_peer(peer: str, input_path: Path, workdir: Path, *, output: str = os.devnull) -> Measurement:
    result = workdir / f"{peer}.result.json"
    result.unlink(missing_ok=True)
    run = launch([sys.executable, "-m", "benchmarks.peers", peer, str(input_path),
                  "--result", str(result), "--output", output], workdir, peer)
    if not result.exists():
        return _measured(run, None, None, error=f"exit {run.returncode}: {_tail(run.stderr)}")
    got = json.loads(result.read_text())
    return _measured(run, got["lines"], got["work_seconds"], error=got["error"])


def csv2lp_command() -> list[str]:
    found = shutil.which("csv2lp")
    return [found] if found else [sys.executable, "-m", "converter"]


def run_csv2lp(input_path: Path, workdir: Path, *, output: str = os.devnull, extra: tuple[str, ...] = (),
               name: str = "csv2lp") -> Measurement:
    summary = workdir / f"{name}.summary.json"
    summary.unlink(missing_ok=True)
    rejects = workdir / f"{name}.rejects.csv"
    run = launch([*csv2lp_command(), str(input_path), "--preset", "movebank", "-o", output, "--quiet",
                  "--summary-json", str(summary), "--rejects", str(rejects), *extra], workdir, name)
    if run.returncode not in (0, 3) or not summary.exists():
        return _measured(run, None, None, error=f"exit {run.returncode}: {_tail(run.stderr)}")
    got = json.loads(summary.read_text())
    return _measured(run, got["lines_written"], got["seconds"], rejected=got["rows_rejected"])


def one_row_copy(input_path: Path, workdir: Path) -> Path:
    """The header and first row of `input_path`: the start-up probe for external binaries."""
    probe = workdir / f"startup-{input_path.name}"
    with open(input_path, "rb") as source:
        probe.write_bytes(source.readline() + source.readline())
    return probe


# Telegraf ---------------------------------------------------------------------------------

TELEGRAF_BATCH = 10_000
_WROTE = re.compile(r"\[outputs\.file\] Wrote batch of (\d+) metrics")


def telegraf_csv_input_settings() -> str:
    """The [[inputs.file]] settings that make Telegraf's CSV parser write csv2lp's points (README)."""
    tags = ", ".join(json.dumps(column) for column in TAGS)
    return f"""\
  name_override = "{MEASUREMENT}"
  data_format = "csv"
  csv_header_row_count = 1
  csv_tag_columns = [{tags}]
  csv_timestamp_column = "{TIME_COLUMN}"
  csv_timestamp_format = "{TIME_LAYOUT_GO}"
  csv_skip_values = [""]"""


def telegraf_config(input_path: Path, output: str, rows: int) -> str:
    """inputs.file + the csv parser -> outputs.file, sized to hold the whole file.

    `--once` gathers once and flushes; the buffer must hold every row or Telegraf drops the
    oldest metrics. `debug` makes outputs.file log each batch it wrote, which is how the
    lines are counted when they go to /dev/null. `precision` keeps the milliseconds:
    by default Telegraf rounds gathered timestamps to its interval's precision (1 s here),
    which would move Movebank's `.999`/`.001` fixes and make a little less work.
    """
    return f"""\
[agent]
  interval = "24h"
  flush_interval = "24h"
  metric_batch_size = {TELEGRAF_BATCH}
  metric_buffer_limit = {rows + TELEGRAF_BATCH}
  precision = "1ns"
  omit_hostname = true
  debug = true
  skip_processors_after_aggregators = true

[[inputs.file]]
  files = [{json.dumps(str(input_path))}]
{telegraf_csv_input_settings()}

[[outputs.file]]
  files = [{json.dumps(output)}]
  data_format = "influx"
"""


def _telegraf_once(input_path: Path, workdir: Path, output: str, rows: int, name: str) -> tuple[Launched, int]:
    config = workdir / f"{name}.conf"
    config.write_text(telegraf_config(input_path, output, rows))
    run = launch([str(TELEGRAF_BIN), "--config", str(config), "--once"], workdir, name)
    log = run.stderr.read_text(errors="replace")
    written = sum(int(n) for n in _WROTE.findall(log))
    return run, written


_startup_cache: dict[str, float] = {}


def telegraf_startup(input_path: Path, workdir: Path, rounds: int = 3) -> float:
    """Median wall time of the same Telegraf command on a one-row file."""
    key = str(TELEGRAF_BIN)
    if key not in _startup_cache:
        probe = one_row_copy(input_path, workdir)
        walls = [_telegraf_once(probe, workdir, os.devnull, 1, "telegraf-startup")[0].wall_seconds
                 for _ in range(rounds)]
        _startup_cache[key] = statistics.median(walls)
    return _startup_cache[key]


def run_telegraf(input_path: Path, workdir: Path, *, rows: int, output: str = os.devnull) -> Measurement:
    if not TELEGRAF_BIN.exists():
        raise Unavailable(f"no Telegraf binary at {TELEGRAF_BIN} (build it with .ci/install-telegraf)")
    startup = telegraf_startup(input_path, workdir)
    run, written = _telegraf_once(input_path, workdir, output, rows, "telegraf")
    log = run.stderr.read_text(errors="replace")
    error = None
    if run.returncode != 0:
        error = f"exit {run.returncode}: {_tail(run.stderr)}"
    elif "buffer overflow" in log:
        error = "Telegraf dropped metrics (buffer overflow)"
    return _measured(run, written, max(run.wall_seconds - startup, 0.0), error=error)


# influx write dryrun ------------------------------------------------------------------------

# Extended annotated CSV datatypes for the Movebank columns; tags are `tag`, the time is a
# dateTime with a Go layout, unknown columns are doubles.
INFLUX_DATATYPES = {
    **{c: "tag" for c in TAGS},
    TIME_COLUMN: f"dateTime:{TIME_LAYOUT_GO}",
    **{c: "long" for c in INTEGER_COLUMNS},
    **{c: "boolean" for c in BOOLEAN_COLUMNS},
    **{c: "string" for c in STRING_COLUMNS},
}


def annotations(header: list[str]) -> list[str]:
    """The extended annotated CSV lines that give the Movebank columns their roles and types."""
    datatypes = ",".join(INFLUX_DATATYPES.get(c, "double") for c in header)
    return [f"#constant measurement,{MEASUREMENT}", f"#datatype {datatypes}"]


def influx_headers(header: list[str]) -> list[str]:
    return [arg for line in annotations(header) for arg in ("--header", line)]


def _header(input_path: Path) -> list[str]:
    with open(input_path, newline="", encoding="utf-8") as source:
        return next(csv.reader(source))


def run_influx_dryrun(input_path: Path, workdir: Path) -> Measurement:
    influx = shutil.which("influx") or (str(BIN_DIR / "influx") if (BIN_DIR / "influx").exists() else None)
    if influx is None:
        raise Unavailable(INFLUX_MISSING)
    base = [influx, "write", "dryrun", "--format", "csv", *influx_headers(_header(input_path)), "--file"]
    probe = one_row_copy(input_path, workdir)
    startup = statistics.median(launch([*base, str(probe)], workdir, "influx-startup").wall_seconds for _ in range(3))
    # dryrun prints the lines on stdout; launch.py saves them to a file, counted afterwards.
    run = launch([*base, str(input_path)], workdir, "influx")
    lines = count_lines(run.stdout)
    run.stdout.unlink(missing_ok=True)
    error = f"exit {run.returncode}: {_tail(run.stderr)}" if run.returncode != 0 else None
    return _measured(run, lines, max(run.wall_seconds - startup, 0.0), error=error)


def annotated_copy(input_path: Path, workdir: Path) -> Path:
    """The input with the annotation lines on top, made once beside it (or in workdir)."""
    folder = input_path.parent if os.access(input_path.parent, os.W_OK) else workdir
    copy = folder / f"{input_path.stem}.annotated.csv"
    if copy.exists() and copy.stat().st_mtime >= input_path.stat().st_mtime:
        return copy
    partial = copy.with_name(copy.name + ".partial")
    with open(input_path, "rb") as source, open(partial, "wb") as out:
        out.write(("\n".join(annotations(_header(input_path))) + "\n").encode())
        shutil.copyfileobj(source, out, 1 << 22)
    partial.replace(copy)
    return copy


def run_influx_csv2lp(input_path: Path, workdir: Path, *, output: str = os.devnull) -> Measurement:
    """pkg/csv2lp (annotated CSV on stdin, lines on stdout) through .ci/install-annotated-ref's binary."""
    if not ANNOTATED_REF_BIN.exists():
        raise Unavailable(f"no {ANNOTATED_REF_BIN} (build it with .ci/install-annotated-ref)")
    command = [str(ANNOTATED_REF_BIN)]
    probe = annotated_copy(one_row_copy(input_path, workdir), workdir)
    startup = statistics.median(launch(command, workdir, "influx-csv2lp-startup", stdin=probe).wall_seconds
                                for _ in range(3))
    # Lines go to stdout, which launch.py saves to a file: counted, then moved to `output`.
    run = launch(command, workdir, "influx-csv2lp", stdin=annotated_copy(input_path, workdir))
    lines = count_lines(run.stdout)
    if output != os.devnull:
        shutil.move(run.stdout, output)
    run.stdout.unlink(missing_ok=True)
    error = f"exit {run.returncode}: {_tail(run.stderr)}" if run.returncode != 0 else None
    return _measured(run, lines, max(run.wall_seconds - startup, 0.0), error=error)


# ---------------------------------------------------------------------------------------


def count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as source:
        while block := source.read(1 << 22):
            count += block.count(b"\n")
    return count


def run_peer(peer: str, input_path: Path, workdir: Path, *, rows: int, output: str = os.devnull) -> Measurement:
    """One measured run of `peer` on `input_path` (a file of `rows` data rows)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if peer in PYTHON_PEERS:
        return run_python_peer(peer, input_path, workdir, output=output)
    if peer == "csv2lp":
        return run_csv2lp(input_path, workdir, output=output)
    if peer == "telegraf":
        return run_telegraf(input_path, workdir, rows=rows, output=output)
    if peer == "influx":
        return run_influx_dryrun(input_path, workdir)
    if peer == "influx_csv2lp":
        return run_influx_csv2lp(input_path, workdir, output=output)
    raise ValueError(f"unknown peer {peer!r}; choose from {', '.join(ALL_PEERS)}")


if __name__ == "__main__":
    sys.exit(_python_peer_main())
