"""Options, inputs and the machine description of the benchmark run.

Not part of the normal test run (setup.cfg: testpaths = tests). Start it with
`python -m benchmarks` (see README.md), or by hand:
`python -m pytest benchmarks -m benchmark --bench-size quick --benchmark-json out.json`.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

import pytest

from .datasets import DEFAULT_DATA_DIR, SIZES, Dataset, DatasetUnavailable, make
from .machine import cpu_model, load_average, memory_gb
from .peers import TELEGRAF_BIN

_skips: list[dict] = []
_load_average: dict[str, float] = {}


def pytest_sessionstart(session):
    _load_average["start"] = load_average()


def pytest_addoption(parser):
    group = parser.getgroup("csv2lp benchmarks")
    group.addoption("--bench-size", choices=sorted(SIZES), default="full",
                    help="input sizes: full (fishers x20, 10M rows, 2 GB; tens of minutes), quick, or tiny (CI smoke)")
    group.addoption("--bench-data", default=str(DEFAULT_DATA_DIR),
                    help="folder for the generated inputs, kept between runs (default: %(default)s)")


class Bench:
    """Session state: the sizes, the inputs made so far, numbers later tests need."""

    def __init__(self, config) -> None:
        self.sizes = SIZES[config.getoption("--bench-size")]
        self.data_dir = Path(config.getoption("--bench-data"))
        self._datasets: dict[str, Dataset | DatasetUnavailable] = {}
        self.peak_rss_per_row_kb: dict[str, float] = {}

    def rounds(self, wanted: int) -> int:
        return min(wanted, self.sizes.max_rounds or wanted)

    def dataset(self, key: str) -> Dataset:
        if key not in self._datasets:
            try:
                self._datasets[key] = make(key, self.sizes, self.data_dir)
            except DatasetUnavailable as exc:
                self._datasets[key] = exc
        found = self._datasets[key]
        if isinstance(found, DatasetUnavailable):
            pytest.skip(str(found))
        return found


@pytest.fixture(scope="session")
def bench(request) -> Bench:
    return Bench(request.config)


def pytest_runtest_logreport(report):
    """Remember why a peer was skipped: the report shows the reason in its row."""
    if report.skipped and report.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        props = dict(report.user_properties)
        _skips.append({"test": report.nodeid, "peer": props.get("peer"), "dataset": props.get("dataset"),
                       "variant": props.get("variant"), "reason": reason.removeprefix("Skipped: ")})


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def _telegraf_version() -> str | None:
    if not TELEGRAF_BIN.exists():
        return None
    done = subprocess.run([str(TELEGRAF_BIN), "version"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip() or None


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Add what the report needs to describe the run: machine, versions, sizes, skips."""
    _load_average["end"] = load_average()
    output_json["csv2lp"] = {
        "date": dt.date.today().isoformat(),
        "sizes": config.getoption("--bench-size"),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb(),
        "python": platform.python_version(),
        "versions": {m: _version(m) for m in ("pyarrow", "pandas", "numpy", "influxdb_client", "converter")},
        "telegraf": _telegraf_version(),
        "skips": _skips,
        "load_average": _load_average,  # other work on a shared machine slows every peer
    }
