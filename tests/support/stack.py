"""The shipped stack minus Docker: telegraf/telegraf.conf and telegraf/csv2lp.toml as shipped,
a real Telegraf running `csv2lp execd` from this checkout, and a real InfluxDB 2.

Only what must differ outside a container is changed, each change named here:
- the execd command runs this checkout (`python -m converter execd`, PYTHONPATH) with a
  csv2lp.toml whose [spool] folders and state file are in a temp folder;
- [[outputs.prometheus_client]] listens on a free loopback port, and [flow]
  telegraf_metrics_url names the same port (the shipped pair: 127.0.0.1:9274);
- the INFLUX_* variables come from the test server, as docker-compose.yml sets them;
- the agent logs at debug level (one line per write: what the tests count sends with).
`restart_delay` shortens execd's wait before restarting a killed csv2lp.
`overrides` may change [agent], [flow] or [pacing] settings for a test that says why.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from .data import REPO
from .influxdb import free_loopback_port
from .influxdb2 import InfluxDB2Server
from .telegraf import BUFFER_OVERFLOW_PATTERN, TelegrafProcess, toml_table, wait_until

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

TELEGRAF_DIR = REPO / "telegraf"
SHIPPED_LISTEN = 'listen = "127.0.0.1:9274"'
SHIPPED_COMMAND = 'command = ["csv2lp", "execd", "--config", "/etc/csv2lp/csv2lp.toml"]'


def shipped_csv2lp() -> dict[str, Any]:
    return tomllib.loads((TELEGRAF_DIR / "csv2lp.toml").read_text())


class ShippedStack:
    def __init__(self, telegraf_bin: Path, server: InfluxDB2Server, root: Path, *,
                 agent: dict[str, Any] | None = None, flow: dict[str, Any] | None = None,
                 pacing: dict[str, Any] | None = None, restart_delay: str | None = None,
                 max_lifetime: float = 900.0) -> None:
        self.server = server
        self.root = root
        self.spool = root / "spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        self.state_file = root / "state" / "state.json"
        self.port = free_loopback_port()
        self.metrics_url = f"http://127.0.0.1:{self.port}/metrics"
        self.config = root / "csv2lp.toml"
        self.config.write_text(self._csv2lp_toml(flow or {}, pacing or {}))
        conf = self._telegraf_conf(agent or {})
        if restart_delay is not None:  # a test that kills csv2lp many times need not wait 10 s each
            assert conf.count('restart_delay = "10s"') == 1
            conf = conf.replace('restart_delay = "10s"', f'restart_delay = "{restart_delay}"')
        self.telegraf = TelegrafProcess(telegraf_bin, conf, root / "telegraf",
                                        env=server.compose_env(), max_lifetime=max_lifetime)

    # -- the two files -----------------------------------------------------------------

    def _csv2lp_toml(self, flow: dict[str, Any], pacing: dict[str, Any]) -> str:
        shipped = shipped_csv2lp()
        spool = {**shipped["spool"], "dir": str(self.spool), "done_dir": str(self.spool / "done"),
                 "rejects_dir": str(self.spool / "rejects"), "error_dir": str(self.spool / "error"),
                 "state_file": str(self.state_file)}
        tables = {"spool": spool, "convert": shipped["convert"],
                  "flow": {**shipped["flow"], "telegraf_metrics_url": self.metrics_url, **flow},
                  "pacing": {**shipped["pacing"], **pacing}}
        return "\n".join(toml_table(f"[{name}]", settings) for name, settings in tables.items())

    def _telegraf_conf(self, agent: dict[str, Any]) -> str:
        text = (TELEGRAF_DIR / "telegraf.conf").read_text()
        for shipped in (SHIPPED_COMMAND, SHIPPED_LISTEN, "[agent]\n"):
            assert text.count(shipped) == 1, f"telegraf.conf no longer has exactly one {shipped!r}"
        command = [sys.executable, "-m", "converter", "execd", "--config", str(self.config)]
        text = text.replace(SHIPPED_COMMAND, f"command = {_toml_list(command)}\n"
                                             f"  environment = {_toml_list([f'PYTHONPATH={REPO}'])}")
        text = text.replace(SHIPPED_LISTEN, f'listen = "127.0.0.1:{self.port}"')
        settings = {"debug": True, "quiet": False, **agent}
        for key, value in settings.items():  # replace a shipped setting, or add it
            line = toml_table("", {key: value}).strip()
            pattern = re.compile(rf"^  #? ?{re.escape(key)} = .*$", re.MULTILINE)
            agent_block, rest = text.split("\n[[inputs.execd]]", 1)
            agent_block, found = pattern.subn(f"  {line}", agent_block, count=1)
            if not found:
                agent_block = agent_block.replace("[agent]\n", f"[agent]\n  {line}\n", 1)
            text = agent_block + "\n[[inputs.execd]]" + rest
        return text

    # -- running it --------------------------------------------------------------------

    def start(self) -> ShippedStack:
        self.telegraf.start()
        self.telegraf.wait_for_log(r"csv2lp execd .*: watching", timeout=60)
        return self

    def close(self) -> None:
        self.telegraf.close()

    def drop(self, source: Path, name: str) -> Path:
        """The documented drop: copy under a hidden name, then rename into place."""
        hidden = self.spool / f".{name}.part"
        shutil.copyfile(source, hidden)
        return hidden.rename(self.spool / name)

    def execd_pids(self) -> list[int]:
        return [pid for pid in self.telegraf.group_pids() if pid != self.telegraf.pid]

    def internal_write(self) -> dict[str, dict[str, float]]:
        """Telegraf's own internal_write numbers per output, read here independently of csv2lp's parser."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text = response.read().decode()
        numbers: dict[str, dict[str, float]] = {}
        for name, labels, value in re.findall(r"^internal_write_(\w+)\{([^}]*)\} (\S+)", text, re.MULTILINE):
            output = re.search(r'output="([^"]*)"', labels).group(1)
            numbers.setdefault(output, {})[name] = float(value)
        return numbers

    def overflow_lines(self) -> list[str]:
        return re.findall(BUFFER_OVERFLOW_PATTERN, self.telegraf.log_text())


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items) + "]"


def count_per_series(server: InfluxDB2Server, bucket: str, measurement: str = "movebank") -> dict[tuple, int]:
    """Points per series, counted by the server through InfluxQL (the DBRP mapping): fast on a million."""
    results = server.influxql(f'SELECT count("event_id") FROM "{measurement}" GROUP BY *', bucket)
    return {tuple(sorted((k, v) for k, v in s["tags"].items() if v)): s["values"][0][1]
            for s in results[0].get("series", [])}


def wait_for_count(server: InfluxDB2Server, bucket: str, total: int, timeout: float) -> float:
    """Seconds until the server counts `total` points (polled every 0.5 s); fail with the count seen."""
    began = time.monotonic()
    seen = {"n": 0}

    def complete() -> bool:
        seen["n"] = sum(count_per_series(server, bucket).values())
        return seen["n"] >= total

    wait_until(complete, timeout, f"{total:,} points in bucket {bucket} (last count {seen['n']:,})", poll=0.5)
    return time.monotonic() - began


def expected_per_series(csv_path: Path) -> dict[tuple, int]:
    """Rows per Movebank tag set, read from the CSV with Python's csv module (independent of csv2lp)."""
    import csv

    tags = {"individual-local-identifier": "individual", "sensor-type": "sensor", "study-name": "study",
            "tag-local-identifier": "tag", "individual-taxon-canonical-name": "taxon"}
    counts: dict[tuple, int] = {}
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        index = [(tags[c], header.index(c)) for c in tags if c in header]
        for row in reader:
            key = tuple(sorted((name, row[i]) for name, i in index if row[i]))
            counts[key] = counts.get(key, 0) + 1
    return counts


def environ_seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))
