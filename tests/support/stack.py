"""The shipped stack minus Docker: telegraf/telegraf.conf and telegraf/csv2lp.toml as shipped,
a real Telegraf running `csv2lp execd` from this checkout, and a real InfluxDB 2.

Only what must differ outside a container is changed (shipped_configs.py makes the edits;
each must find its line), each change named here:
- the execd command runs this checkout (`python -m converter execd`, PYTHONPATH) with a
  csv2lp.toml whose [spool] folders and state file are in a temp folder;
- [[outputs.prometheus_client]] listens on a free loopback port, and [flow]
  telegraf_metrics_url names the same port (the shipped pair: 127.0.0.1:9274);
- the INFLUX_* variables come from the test server, as docker-compose.yml sets them;
- the agent logs at debug level (one line per write: what the tests count sends with).
`restart_delay` shortens execd's wait before restarting a killed csv2lp.
`agent`, `flow` or `pacing` may change settings of those tables (each a setting or a
commented default of the shipped file) for a test that says why.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from . import shipped_configs
from .data import REPO
from .influxdb import free_loopback_port
from .influxdb2 import InfluxDB2Server, recheck_short_count
from .telegraf import BUFFER_OVERFLOW_PATTERN, TelegrafError, TelegrafProcess, internal_write, wait_until


class ShippedStack:
    def __init__(self, telegraf_bin: Path, server: InfluxDB2Server, root: Path, *,
                 agent: dict[str, Any] | None = None, flow: dict[str, Any] | None = None,
                 pacing: dict[str, Any] | None = None, restart_delay: str | None = None,
                 max_lifetime: float = 900.0, writers: int = 1) -> None:
        self.server = server
        self.root = root
        self.port = free_loopback_port()
        self.metrics_url = shipped_configs.metrics_url(self.port)
        # One spool, state file and csv2lp.toml per writer: with several, one [[inputs.execd]] each.
        suffixes = [""] if writers == 1 else [str(n) for n in range(writers)]
        self.spools = [root / f"spool{n}" for n in suffixes]
        self.state_files = [root / f"state{n}" / "state.json" for n in suffixes]
        self.configs = [root / f"csv2lp{n}.toml" for n in suffixes]
        self.spool, self.state_file, self.config = self.spools[0], self.state_files[0], self.configs[0]
        for spool, state_file, config in zip(self.spools, self.state_files, self.configs):
            spool.mkdir(parents=True, exist_ok=True)
            config.write_text(self._csv2lp_toml(spool, state_file, flow or {}, pacing or {}))
        conf = self._telegraf_conf(agent or {}, restart_delay)
        self.telegraf = TelegrafProcess(telegraf_bin, conf, root / "telegraf",
                                        env=server.compose_env(), max_lifetime=max_lifetime)

    # -- the two files -----------------------------------------------------------------

    def _csv2lp_toml(self, spool: Path, state_file: Path, flow: dict[str, Any], pacing: dict[str, Any]) -> str:
        config = shipped_configs.csv2lp_toml(spool=spool, state_file=state_file, metrics_port=self.port)
        for table, settings in (("[flow]", flow), ("[pacing]", pacing)):
            for key, value in settings.items():
                config.set(table, key, value)
        return config.text

    def _telegraf_conf(self, agent: dict[str, Any], restart_delay: str | None) -> str:
        config = shipped_configs.telegraf_conf(metrics_port=self.port, csv2lp_toml=self.config)
        config.set("[[inputs.execd]]", "environment", [f"PYTHONPATH={REPO}"])
        if restart_delay is not None:  # a test that kills csv2lp many times need not wait 10 s each
            config.set("[[inputs.execd]]", "restart_delay", restart_delay)
        for key, value in {"debug": True, "quiet": False, **agent}.items():
            config.set("[agent]", key, value)
        if len(self.configs) > 1:
            config.repeat_table("[[inputs.execd]]",
                                [{"command": shipped_configs.execd_command(c)} for c in self.configs],
                                f"[[inputs.execd]] once per spool ({len(self.configs)} csv2lp under one Telegraf)")
        return config.text

    # -- running it --------------------------------------------------------------------

    def start(self) -> ShippedStack:
        self.telegraf.start()
        for spool in self.spools:
            self.telegraf.wait_for_log(rf"csv2lp execd .*: watching {re.escape(str(spool))} ", timeout=60)
        return self

    def close(self) -> None:
        self.telegraf.close()

    def drop(self, source: Path, name: str, writer: int = 0) -> Path:
        """The documented drop: copy under a hidden name, then rename into place (in writer's spool)."""
        spool = self.spools[writer]
        hidden = spool / f".{name}.part"
        shutil.copyfile(source, hidden)
        return hidden.rename(spool / name)

    def execd_pids(self) -> list[int]:
        return [pid for pid in self.telegraf.group_pids() if pid != self.telegraf.pid]

    def internal_write(self) -> dict[str, dict[str, float]]:
        return internal_write(self.metrics_url)

    def overflow_lines(self) -> list[str]:
        return re.findall(BUFFER_OVERFLOW_PATTERN, self.telegraf.log_text())


def count_per_series(server: InfluxDB2Server, bucket: str, measurement: str = "movebank") -> dict[tuple, int]:
    """Points per series, counted by the server through InfluxQL (the DBRP mapping): fast on a million."""
    results = server.influxql(f'SELECT count("event_id") FROM "{measurement}" GROUP BY *', bucket)
    return {tuple(sorted((k, v) for k, v in s["tags"].items() if v)): s["values"][0][1]
            for s in results[0].get("series", [])}


def wait_for_count(server: InfluxDB2Server, bucket: str, total: int, timeout: float) -> float:
    """Seconds until the server counts `total` points (polled every 0.5 s). A count still short after
    `timeout` is re-checked after restarting influxd before it is called a loss (recheck_short_count)."""
    began = time.monotonic()

    def counted() -> int:
        return sum(count_per_series(server, bucket).values())

    try:
        wait_until(lambda: counted() >= total, timeout, f"{total:,} points in bucket {bucket}", poll=0.5)
    except TelegrafError:
        print("\n" + recheck_short_count(server, counted, total))
    return time.monotonic() - began


MOVEBANK_TAGS = {"individual-local-identifier": "individual", "sensor-type": "sensor", "study-name": "study",
                 "tag-local-identifier": "tag", "individual-taxon-canonical-name": "taxon"}


def _rows_by_series(csv_path: Path) -> Iterator[tuple[tuple, str]]:
    """(Movebank tag set, timestamp text) of every row, read with Python's csv module (independent of csv2lp)."""
    import csv

    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        index = [(MOVEBANK_TAGS[c], header.index(c)) for c in MOVEBANK_TAGS if c in header]
        stamp = header.index("timestamp")
        for row in reader:
            yield tuple(sorted((name, row[i]) for name, i in index if row[i])), row[stamp]


def expected_per_series(csv_path: Path) -> dict[tuple, int]:
    """Rows per Movebank tag set of one file."""
    counts: dict[tuple, int] = {}
    for key, _ in _rows_by_series(csv_path):
        counts[key] = counts.get(key, 0) + 1
    return counts


def expected_points_per_series(csv_paths: Sequence[Path]) -> dict[tuple, int]:
    """Points per tag set InfluxDB keeps from several files: one per series and timestamp, as two
    files can hold the same animal at the same millisecond (the later write overwrites the earlier)."""
    stamps: dict[tuple, set[str]] = {}
    for path in csv_paths:
        for key, stamp in _rows_by_series(path):
            stamps.setdefault(key, set()).add(stamp)
    return {key: len(times) for key, times in stamps.items()}


def environ_seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def shipped_stacks(telegraf_bin, private_influxdb2, tmp_path):
    """make(**settings) starts a ShippedStack on the module's private InfluxDB 2; every one is closed
    after the test, and an InfluxDB a test left stopped is started again for the next."""
    made: list[ShippedStack] = []

    def make(**settings) -> ShippedStack:
        made.append(ShippedStack(telegraf_bin, private_influxdb2, tmp_path / f"stack{len(made)}", **settings))
        return made[-1].start()

    yield make
    for stack in made:
        stack.close()
    if not private_influxdb2.running:
        private_influxdb2.start()
