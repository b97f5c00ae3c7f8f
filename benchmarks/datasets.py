"""The benchmark's input files: made once, kept in a data folder, reused by later runs.

| key     | full run                                | --quick            | measures                    |
|---------|-----------------------------------------|--------------------|-----------------------------|
| fishers | the shared fishers export x 20 (946,940 rows) | x 2          | every peer; --s2-level      |
| large   | generated, 10,000,000 rows (~1.45 GB)   | 200,000 rows       | every peer; 10x-rows scaling |
| base    | generated, 1,000,000 rows               | 20,000 rows        | scaling and quarantine base |
| bad     | `base` with 1 % bad rows                | 20,000 rows        | --on-error quarantine cost  |
| big     | generated, ~2 GB                        | ~20 MB             | peak RSS                    |

Files are named after their size and seed, so a cached file is always the one asked for;
delete the folder (default: $TMPDIR/csv2lp-bench) to get the disk space back.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .generate import generate, repeat_file, rows_for_bytes

REPO = Path(__file__).resolve().parent.parent
# The real Movebank exports sit beside the checkout in ../shared/data (CI's layout); another
# layout names that folder in $CSV2LP_SHARED_DATA, as the tests do (tests/support/data.py).
SHARED_DATA = Path(os.environ.get("CSV2LP_SHARED_DATA") or REPO.parent / "shared" / "data")
FISHERS = SHARED_DATA / "movebank" / "fishers-new-york.csv.gz"
DEFAULT_DATA_DIR = Path(os.environ.get("CSV2LP_BENCH_DATA", Path(tempfile.gettempdir()) / "csv2lp-bench"))
SEED = 7


@dataclass(frozen=True)
class Sizes:
    name: str
    fishers_repeat: int
    base_rows: int
    large_rows: int
    big_bytes: int
    bad_fraction: float = 0.01
    max_rounds: int | None = None  # caps the rounds of every peer


FULL = Sizes("full", fishers_repeat=20, base_rows=1_000_000, large_rows=10_000_000, big_bytes=2_000_000_000)
QUICK = Sizes("quick", fishers_repeat=2, base_rows=20_000, large_rows=200_000, big_bytes=20_000_000)
# For tests/test_benchmarks_smoke.py: every code path in seconds, one round each.
TINY = Sizes("tiny", fishers_repeat=1, base_rows=2_000, large_rows=20_000, big_bytes=300_000, max_rounds=1)
SIZES = {s.name: s for s in (FULL, QUICK, TINY)}


@dataclass(frozen=True)
class Dataset:
    key: str
    label: str
    path: Path
    rows: int
    bytes: int
    bad_rows: int = 0

    def as_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


class DatasetUnavailable(Exception):
    """The input cannot be made here; the message is the reason."""


def _megabytes(size: int) -> str:
    if size >= 1e9:
        return f"{size / 1e9:.2f} GB"
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def _cached(path: Path) -> dict | None:
    meta = path.with_name(path.name + ".json")
    if path.exists() and meta.exists():
        info = json.loads(meta.read_text())
        if info.get("bytes") == path.stat().st_size:
            return info
    return None


def _remember(path: Path, rows: int, bad_rows: int) -> dict:
    info = {"rows": rows, "bad_rows": bad_rows, "bytes": path.stat().st_size}
    path.with_name(path.name + ".json").write_text(json.dumps(info))
    return info


def fishers_repeated(times: int, data_dir: Path, source: Path = FISHERS) -> Dataset:
    if not source.exists():
        raise DatasetUnavailable(f"the shared fishers file is not at {source} (a clone without ../shared: "
                                 f"set CSV2LP_SHARED_DATA to the folder that holds movebank/)")
    path = data_dir / f"fishers-x{times}.csv"
    info = _cached(path)
    if info is None:
        with gzip.open(source, "rb") as compressed:
            text = compressed.read()
        header, _, body = text.partition(b"\n")
        if not body.endswith(b"\n"):
            body += b"\n"
        repeat_file(body, header + b"\n", times, path)
        info = _remember(path, body.count(b"\n") * times, 0)
    return Dataset("fishers", f"fishers x{times} ({info['rows']:,} rows, {_megabytes(info['bytes'])})",
                   path, info["rows"], info["bytes"])


def generated(key: str, rows: int, data_dir: Path, *, bad_fraction: float = 0.0, what: str = "generated") -> Dataset:
    suffix = f"-bad{bad_fraction:g}" if bad_fraction else ""
    path = data_dir / f"movebank-{rows}-seed{SEED}{suffix}.csv"
    info = _cached(path)
    if info is None:
        free = shutil.disk_usage(data_dir).free
        if free < rows * 200:
            raise DatasetUnavailable(f"{rows:,} generated rows need ~{_megabytes(rows * 150)}; "
                                     f"only {_megabytes(free)} free in {data_dir}")
        made = generate(path, rows, seed=SEED, bad_fraction=bad_fraction)
        info = _remember(path, made.rows, made.bad_rows)
    bad = f", {info['bad_rows']:,} bad" if info["bad_rows"] else ""
    label = f"{what} ({info['rows']:,} rows{bad}, {_megabytes(info['bytes'])})"
    return Dataset(key, label, path, info["rows"], info["bytes"], info["bad_rows"])


def make(key: str, sizes: Sizes, data_dir: Path = DEFAULT_DATA_DIR) -> Dataset:
    """The dataset `key` (fishers, large, base, bad, big) at these sizes, made if not cached."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if key == "fishers":
        return fishers_repeated(sizes.fishers_repeat, data_dir)
    if key == "large":
        return generated(key, sizes.large_rows, data_dir)
    if key == "base":
        return generated(key, sizes.base_rows, data_dir)
    if key == "bad":
        return generated(key, sizes.base_rows, data_dir, bad_fraction=sizes.bad_fraction,
                         what=f"generated, {sizes.bad_fraction:.0%} bad rows")
    if key == "big":
        return generated(key, rows_for_bytes(sizes.big_bytes, SEED), data_dir)
    raise ValueError(f"unknown dataset {key!r}")
