"""Every Telegraf and csv2lp config of the benchmark, made from the SHIPPED files by named edits.

telegraf/telegraf.conf and telegraf/csv2lp.toml are read as text and changed setting by
setting (`set_setting`), so what runs is the shipped file with the few lines a path
must differ in, and `edits` lists them for the results. Each edit must find its table
and its line; a shipped file reorganised under it fails loudly instead of measuring
something else.

| path | telegraf.conf | csv2lp.toml |
|---|---|---|
| all | execd's command (this checkout), the prometheus_client port | the spool's folders, the same port |
| d shipped | v1: the commented [[outputs.influxdb]] instead of influxdb_v2 | - |
| e unpaced | metric_buffer_limit = 2,000,000 | [flow] url = "", [pacing] lines_per_second = 0 |
| f fixed pace | - | [flow] url = "" |
| g disk | e's, buffer_strategy = "disk" | e's |
| b relay, c csv | [[inputs.file]] instead of execd; round_interval = false (gather at start), precision = 1ns, a buffer that holds the file | - |
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import peers
from .servers import REPO

SHIPPED_TELEGRAF = REPO / "telegraf" / "telegraf.conf"
SHIPPED_CSV2LP = REPO / "telegraf" / "csv2lp.toml"
UNPACED_BUFFER = 2_000_000
_HEADER = re.compile(r"^\s*\[")
_TOP_COMMENT = re.compile(r"^#")


class ShippedConfigChanged(Exception):
    """An edit did not find what it edits in the shipped file."""


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: the same escapes as JSON for these values
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _section(lines: list[str], header: str, *, name: str) -> tuple[int, int]:
    """[start, end) of table `header`: its header line through its sub-tables, up to the next
    top-level table or top-level comment (the shipped files put a `# ...` line above every table)."""
    starts = [n for n, line in enumerate(lines) if line.strip() == header]
    if len(starts) != 1:
        raise ShippedConfigChanged(f"{name}: expected one {header} table, found {len(starts)}")
    start = starts[0]
    end = start + 1
    while end < len(lines) and not (lines[end][:1] == "[" or _TOP_COMMENT.match(lines[end])):
        end += 1
    return start, end


@dataclass
class ConfigText:
    """A shipped config being edited; `edits` says what changed, for the results."""

    name: str
    text: str
    edits: list[str] = field(default_factory=list)

    @classmethod
    def shipped(cls, path: Path) -> ConfigText:
        return cls(path.name, path.read_text())

    def set(self, header: str, key: str, value: object) -> ConfigText:
        """`key = value` in table `header`: replaces the setting, else its commented default (`# key = ...`)."""
        lines = self.text.split("\n")
        start, end = _section(lines, header, name=self.name)
        setting = re.compile(rf"^(\s*){re.escape(key)}\s*=")
        commented = re.compile(rf"^(\s*)#\s*{re.escape(key)}\s*=")
        body = range(start + 1, end)
        found = [n for n in body if setting.match(lines[n]) and not _HEADER.match(lines[n])]
        if not found:
            found = [n for n in body if commented.match(lines[n])][:1]
        if len(found) != 1:
            raise ShippedConfigChanged(f"{self.name}: {header} has {len(found)} lines setting {key}")
        indent = re.match(r"^\s*", lines[found[0]]).group(0)
        lines[found[0]] = f"{indent}{key} = {toml_value(value)}"
        self.text = "\n".join(lines)
        self.edits.append(f"{header} {key} = {toml_value(value)}")
        return self

    def replace_table(self, header: str, block: str, why: str) -> ConfigText:
        lines = self.text.split("\n")
        start, end = _section(lines, header, name=self.name)
        lines[start:end] = block.rstrip("\n").split("\n") + [""]
        self.text = "\n".join(lines)
        self.edits.append(why)
        return self

    def use_influxdb_v1_output(self) -> ConfigText:
        """The commented [[outputs.influxdb]] block instead of [[outputs.influxdb_v2]], as its comment says."""
        lines = self.text.split("\n")
        start, end = _section(lines, "[[outputs.influxdb_v2]]", name=self.name)
        del lines[start:end]
        first = [n for n, line in enumerate(lines) if line.strip() == "# [[outputs.influxdb]]"]
        if len(first) != 1:
            raise ShippedConfigChanged(f"{self.name}: expected one commented [[outputs.influxdb]] block")
        n = first[0]
        while n < len(lines) and lines[n].startswith("#"):
            lines[n] = lines[n][2:] if lines[n].startswith("# ") else lines[n][1:]
            n += 1
        self.text = "\n".join(lines)
        self.edits.append("[[outputs.influxdb]] uncommented instead of [[outputs.influxdb_v2]]")
        return self


@dataclass(frozen=True)
class ExecdVariant:
    """How a csv2lp execd path differs from the shipped configs."""

    key: str
    flow: bool = True  # [flow] telegraf_metrics_url as shipped (else "")
    paced: bool = True  # [pacing] as shipped (else lines_per_second = 0)
    buffer_limit: int | None = None  # [agent] metric_buffer_limit, None: as shipped
    disk_buffer: bool = False


@dataclass(frozen=True)
class Folders:
    """Where one path's files go."""

    root: Path

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    def make(self) -> Folders:
        for folder in (self.spool, self.root / "done", self.root / "rejects", self.root / "error",
                       self.root / "state", self.root / "buffer"):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def csv2lp_config(variant: ExecdVariant, folders: Folders, metrics_port: int) -> ConfigText:
    config = ConfigText.shipped(SHIPPED_CSV2LP)
    config.set("[spool]", "dir", str(folders.spool))
    for key, folder in (("done_dir", "done"), ("rejects_dir", "rejects"), ("error_dir", "error")):
        config.set("[spool]", key, str(folders.root / folder))
    config.set("[spool]", "state_file", str(folders.root / "state" / "state.json"))
    config.set("[flow]", "telegraf_metrics_url", f"http://127.0.0.1:{metrics_port}/metrics" if variant.flow else "")
    if not variant.paced:
        config.set("[pacing]", "lines_per_second", 0)
    return config


def _common_telegraf(server_kind: str, metrics_port: int) -> ConfigText:
    config = ConfigText.shipped(SHIPPED_TELEGRAF)
    config.set("[[outputs.prometheus_client]]", "listen", f"127.0.0.1:{metrics_port}")
    if server_kind == "v1":
        config.use_influxdb_v1_output()
    return config


def execd_telegraf_config(variant: ExecdVariant, server_kind: str, csv2lp_toml: Path, folders: Folders,
                          metrics_port: int) -> ConfigText:
    config = _common_telegraf(server_kind, metrics_port)
    # `python -m converter` from this checkout (PYTHONPATH), where the image has `csv2lp` on PATH.
    config.set("[[inputs.execd]]", "command", [sys.executable, "-m", "converter", "execd", "--config", str(csv2lp_toml)])
    if variant.buffer_limit is not None:
        config.set("[agent]", "metric_buffer_limit", variant.buffer_limit)
    if variant.disk_buffer:
        config.set("[agent]", "buffer_strategy", "disk")
        config.set("[agent]", "buffer_directory", str(folders.root / "buffer"))
    return config


def file_input_block(input_path: Path, data_format: str) -> str:
    """[[inputs.file]] reading the whole file once; the CSV settings are the converter benchmark's (peers.py)."""
    settings = {"files": [str(input_path)], "interval": "24h"}
    if data_format == "csv":
        return "\n".join(["[[inputs.file]]", *(f"  {k} = {toml_value(v)}" for k, v in settings.items()),
                          peers.telegraf_csv_input_settings()])
    settings["data_format"] = "influx"
    return "\n".join(["[[inputs.file]]", *(f"  {k} = {toml_value(v)}" for k, v in settings.items())])


def file_telegraf_config(input_path: Path, data_format: str, server_kind: str, rows: int, metrics_port: int) -> ConfigText:
    """The shipped telegraf.conf with inputs.file in execd's place: Telegraf's relay (influx) or its CSV parser.

    round_interval = false: the unaligned ticker gathers at once, the aligned one only at
    the next whole interval ("The first tick is emitted immediately", influxdata/telegraf
    v1.39.3 internal/clock). A 24 h interval reads the file once (inputs.file reads every
    interval, #18137). precision = 1ns: by default Telegraf rounds a gathered metric's
    time to the interval's order (1 s), which would move the points; execd is a service
    input and is never rounded. The buffer holds the whole file: the file is read at
    once, faster than any output writes.
    """
    config = _common_telegraf(server_kind, metrics_port)
    what = "Telegraf's CSV parser" if data_format == "csv" else "ready-made line protocol"
    config.replace_table("[[inputs.execd]]", file_input_block(input_path, data_format),
                         f"[[inputs.file]] ({what}, interval 24h) instead of [[inputs.execd]]")
    config.set("[agent]", "round_interval", False)
    config.set("[agent]", "precision", "1ns")
    batch = int(re.search(r"(?m)^\s*metric_batch_size\s*=\s*(\d+)", config.text).group(1))
    config.set("[agent]", "metric_buffer_limit", rows + 2 * batch)
    return config
