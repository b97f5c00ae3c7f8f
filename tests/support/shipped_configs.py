"""The shipped telegraf/telegraf.conf and telegraf/csv2lp.toml with a few named edits.

What the stack tests (support/stack.py, test_stack_v2.py) and the ingest benchmark
(benchmarks/ingest/configs.py) run is the shipped file as text, changed setting by
setting (`ConfigText.set`), so every comment and every other line stays as shipped and
`edits` lists what changed. Each edit must find its table and its line: a shipped file
reorganised under it fails loudly (ShippedConfigChanged) instead of testing or measuring
something else.

The edits every caller needs, outside a container:
- the execd command runs this checkout (`python -m converter execd`) with a temp config;
- [[outputs.prometheus_client]] listens on a free loopback port, and [flow]
  telegraf_metrics_url names the same port (shipped: 127.0.0.1:9274), so that two stacks
  on one machine do not meet;
- csv2lp's [spool] folders and state file move into a temp folder.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .data import REPO
from .telegraf import toml_value

SHIPPED_TELEGRAF = REPO / "telegraf" / "telegraf.conf"
SHIPPED_CSV2LP = REPO / "telegraf" / "csv2lp.toml"
_HEADER = re.compile(r"^\s*\[")
_TOP_COMMENT = re.compile(r"^#")


class ShippedConfigChanged(Exception):
    """An edit did not find what it edits in the shipped file."""


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
    """A shipped config being edited; `edits` says what changed (the benchmark's results list them)."""

    name: str
    text: str
    edits: list[str] = field(default_factory=list)

    @classmethod
    def shipped(cls, path: Path) -> ConfigText:
        return cls(path.name, path.read_text(encoding="utf-8"))

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

    def table(self, header: str) -> str:
        """Table `header` as it stands, its sub-tables included (to copy it into another config)."""
        lines = self.text.split("\n")
        start, end = _section(lines, header, name=self.name)
        return "\n".join(lines[start:end]).rstrip("\n") + "\n"

    def extend_table(self, header: str, block: str, why: str) -> ConfigText:
        """`block` (settings or sub-tables) added at the end of table `header`."""
        lines = self.text.split("\n")
        _, end = _section(lines, header, name=self.name)
        lines[end:end] = block.rstrip("\n").split("\n") + [""]
        self.text = "\n".join(lines)
        self.edits.append(why)
        return self

    def replace_table(self, header: str, block: str, why: str) -> ConfigText:
        lines = self.text.split("\n")
        start, end = _section(lines, header, name=self.name)
        lines[start:end] = block.rstrip("\n").split("\n") + [""]
        self.text = "\n".join(lines)
        self.edits.append(why)
        return self

    def repeat_table(self, header: str, variants: list[dict[str, object]], why: str) -> ConfigText:
        """Table `header` once per variant, each copy with that variant's settings (as `set` makes them):
        e.g. one [[inputs.execd]] per spool, as users run several csv2lp under one Telegraf."""
        lines = self.text.split("\n")
        start, end = _section(lines, header, name=self.name)
        copies: list[str] = []
        for variant in variants:
            copy = ConfigText(self.name, "\n".join(lines[start:end]))
            for key, value in variant.items():
                copy.set(header, key, value)
            copies.extend(copy.text.split("\n"))
        lines[start:end] = copies
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


def metrics_url(port: int) -> str:
    """[flow] telegraf_metrics_url for a prometheus_client listening on loopback `port`."""
    return f"http://127.0.0.1:{port}/metrics"


def execd_command(csv2lp_toml: Path) -> list[str]:
    """`python -m converter execd` from this checkout (with PYTHONPATH), where the image has `csv2lp` on PATH."""
    return [sys.executable, "-m", "converter", "execd", "--config", str(csv2lp_toml)]


def telegraf_conf(*, metrics_port: int, csv2lp_toml: Path | None = None, influxdb_v1: bool = False) -> ConfigText:
    """The shipped telegraf.conf with prometheus_client on `metrics_port`; with `csv2lp_toml`, execd runs
    this checkout with that config; with `influxdb_v1`, the commented v1 output instead of influxdb_v2."""
    config = ConfigText.shipped(SHIPPED_TELEGRAF)
    config.set("[[outputs.prometheus_client]]", "listen", f"127.0.0.1:{metrics_port}")
    if influxdb_v1:
        config.use_influxdb_v1_output()
    if csv2lp_toml is not None:
        config.set("[[inputs.execd]]", "command", execd_command(csv2lp_toml))
    return config


def csv2lp_toml(*, spool: Path, state_file: Path, metrics_port: int | None, done_dir: Path | None = None,
                rejects_dir: Path | None = None, error_dir: Path | None = None) -> ConfigText:
    """The shipped csv2lp.toml with its [spool] folders and state file moved, and [flow] reading
    Telegraf's numbers on `metrics_port` (None: telegraf_metrics_url = "", the fixed pace).

    done/, rejects/ and error/ are in the spool unless named, as the shipped file has them.
    """
    config = ConfigText.shipped(SHIPPED_CSV2LP)
    config.set("[spool]", "dir", str(spool))
    config.set("[spool]", "done_dir", str(done_dir or spool / "done"))
    config.set("[spool]", "rejects_dir", str(rejects_dir or spool / "rejects"))
    config.set("[spool]", "error_dir", str(error_dir or spool / "error"))
    config.set("[spool]", "state_file", str(state_file))
    config.set("[flow]", "telegraf_metrics_url", metrics_url(metrics_port) if metrics_port is not None else "")
    return config
