"""What every path reads: the generated CSV, the same rows as line protocol, and what InfluxDB must hold.

The CSV is benchmarks/generate.py's (the fishers file's shape, no duplicate points),
cached in the benchmark data folder like the converter benchmark's inputs. The line
protocol is made once per run by `csv2lp convert` with the Movebank preset at ns
precision, the same lines execd and the direct path write. The points per series come
from the CSV itself (its five tag columns), not from csv2lp.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from .. import peers
from ..datasets import generated
from . import rawpost
from .servers import REPO, SeriesCounts


@dataclass
class Inputs:
    """What every path reads: the CSV, the same rows as line protocol, and what the database must hold."""

    csv: Path
    lines: Path
    rows: int
    per_series: SeriesCounts  # keyed by csv2lp's tag keys
    _bodies: list[bytes] | None = None

    def bodies(self) -> list[bytes]:
        if self._bodies is None:
            self._bodies = rawpost.gzip_bodies(self.lines)
        return self._bodies


def expected_per_series(csv_path: Path) -> SeriesCounts:
    """{sorted (csv2lp tag key, value) pairs: rows} from the CSV's tag columns."""
    columns = list(peers.TAGS)
    table = pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(
        include_columns=columns, column_types={c: pa.string() for c in columns}))
    counts = table.group_by(columns).aggregate([([], "count_all")])
    result: SeriesCounts = {}
    for row in counts.to_pylist():
        tags = tuple(sorted((peers.TAGS[c], row[c]) for c in columns if row[c] not in (None, "")))
        result[tags] = result.get(tags, 0) + row["count_all"]
    return result


def prepare(rows: int, data_dir: Path, workdir: Path) -> Inputs:
    data_dir.mkdir(parents=True, exist_ok=True)
    dataset = generated("ingest", rows, data_dir)
    if dataset.bad_rows:
        raise RuntimeError(f"{dataset.path} has bad rows; the benchmark needs a clean file")
    lines = workdir / "movebank.lp"
    done = subprocess.run([sys.executable, "-m", "converter", "convert", str(dataset.path), "--preset", "movebank",
                           "--precision", "ns", "-o", str(lines), "--quiet"],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"csv2lp convert failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    written = peers.count_lines(lines)
    if written != dataset.rows:
        raise RuntimeError(f"csv2lp convert wrote {written:,} lines for {dataset.rows:,} rows")
    return Inputs(dataset.path, lines, dataset.rows, expected_per_series(dataset.path))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
