"""Every Telegraf and csv2lp config of the benchmark, made from the SHIPPED files by named edits.

telegraf/telegraf.conf and telegraf/csv2lp.toml are read as text and changed setting by
setting (tests/support/shipped_configs.py, which the stack tests use too), so what runs
is the shipped file with the few lines a path must differ in, and `edits` lists them for
the results. Each edit must find its table and its line; a shipped file reorganised
under it fails loudly instead of measuring something else.

| path | telegraf.conf | csv2lp.toml |
|---|---|---|
| all | execd's command (this checkout), the prometheus_client port | the spool's folders, the same port |
| d shipped | v1: the commented [[outputs.influxdb]] instead of influxdb_v2 | - |
| e unpaced | metric_buffer_limit = 2,000,000 | [flow] url = "", [pacing] lines_per_second = 0 |
| f fixed pace | - | [flow] url = "" |
| g disk | e's, buffer_strategy = "disk" | e's |
| b relay, c csv | [[inputs.file]] instead of execd; round_interval = false (gather at start), precision = 1ns, a buffer that holds the file | - |
| i-k Kafka | telegraf/kafka-consumer.conf as shipped, plus telegraf.conf's [[inputs.internal]] and [[outputs.prometheus_client]] (the benchmark reads metrics_written there) and their tagdrop on influxdb_v2 | - |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .. import peers
from . import servers  # noqa: F401  (puts tests/ on sys.path, for support.*)

from support import shipped_configs  # noqa: E402
from support.shipped_configs import SHIPPED_CSV2LP, SHIPPED_TELEGRAF, ConfigText, ShippedConfigChanged  # noqa: E402
from support.telegraf import toml_value  # noqa: E402

__all__ = ["SHIPPED_CSV2LP", "SHIPPED_TELEGRAF", "ConfigText", "ShippedConfigChanged", "UNPACED_BUFFER",
           "ExecdVariant", "Folders", "csv2lp_config", "execd_telegraf_config", "file_telegraf_config",
           "kafka_consumer_config"]

SHIPPED_KAFKA_CONSUMER = SHIPPED_TELEGRAF.parent / "kafka-consumer.conf"

UNPACED_BUFFER = 2_000_000


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
    root = folders.root
    config = shipped_configs.csv2lp_toml(spool=folders.spool, done_dir=root / "done", rejects_dir=root / "rejects",
                                         error_dir=root / "error", state_file=root / "state" / "state.json",
                                         metrics_port=metrics_port if variant.flow else None)
    if not variant.paced:
        config.set("[pacing]", "lines_per_second", 0)
    return config


def execd_telegraf_config(variant: ExecdVariant, server_kind: str, csv2lp_toml: Path, folders: Folders,
                          metrics_port: int) -> ConfigText:
    config = shipped_configs.telegraf_conf(metrics_port=metrics_port, influxdb_v1=server_kind == "v1",
                                           csv2lp_toml=csv2lp_toml)
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
    config = shipped_configs.telegraf_conf(metrics_port=metrics_port, influxdb_v1=server_kind == "v1")
    what = "Telegraf's CSV parser" if data_format == "csv" else "ready-made line protocol"
    config.replace_table("[[inputs.execd]]", file_input_block(input_path, data_format),
                         f"[[inputs.file]] ({what}, interval 24h) instead of [[inputs.execd]]")
    config.set("[agent]", "round_interval", False)
    config.set("[agent]", "precision", "1ns")
    batch = int(re.search(r"(?m)^\s*metric_batch_size\s*=\s*(\d+)", config.text).group(1))
    config.set("[agent]", "metric_buffer_limit", rows + 2 * batch)
    return config


def kafka_consumer_config(metrics_port: int) -> ConfigText:
    """The shipped kafka-consumer.conf with telegraf.conf's own numbers added: [[inputs.internal]] and
    [[outputs.prometheus_client]] (on `metrics_port`), and the tagdrop that keeps them out of InfluxDB,
    so the benchmark reads the consumer's metrics_written as it reads the relay's. Nothing else changes:
    the consumer group, max_undelivered_messages and the batch and buffer sizes are the shipped ones."""
    config = ConfigText.shipped(SHIPPED_KAFKA_CONSUMER)
    numbers = shipped_configs.telegraf_conf(metrics_port=metrics_port)
    blocks = [numbers.table(header) for header in ("[[inputs.internal]]", "[[outputs.prometheus_client]]")]
    config.text = config.text.rstrip("\n") + "\n\n" + "\n".join(blocks)
    config.edits.append(f"+ telegraf.conf's [[inputs.internal]] and [[outputs.prometheus_client]] "
                        f"(127.0.0.1:{metrics_port})")
    return config.extend_table("[[outputs.influxdb_v2]]", '  [outputs.influxdb_v2.tagdrop]\n    csv2lp = ["flow"]',
                               '[outputs.influxdb_v2.tagdrop] csv2lp = ["flow"] (as telegraf.conf: its numbers stay out)')
