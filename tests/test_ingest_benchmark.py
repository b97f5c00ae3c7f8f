"""Keeps benchmarks/ingest alive: its configs are the shipped ones, and every fast path lands every row.

Never a timing: the smoke test runs `python -m benchmarks.ingest` on 2,000 rows into a
real InfluxDB 2 through a real Telegraf, and checks that each path's database holds every
row, exactly per series, with nothing dropped, and that the table has every column. The
benchmark itself: `python -m benchmarks.ingest` (benchmarks/README.md, "End to end into
InfluxDB").
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from support.data import REPO
from support.influxdb2 import require_influxd2
from support.kafka import require_kafka

# `benchmarks` is a top-level folder beside `converter`, not an installed package.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.ingest import configs, table, watch  # noqa: E402
from benchmarks.ingest.__main__ import chosen_paths, skipped_paths  # noqa: E402
from benchmarks.ingest.paths import EXECD_VARIANTS, PATHS  # noqa: E402

SHIPPED_TELEGRAF = tomllib.loads(configs.SHIPPED_TELEGRAF.read_text())
SHIPPED_CSV2LP = tomllib.loads(configs.SHIPPED_CSV2LP.read_text())
PORT = 40123


def _parsed(config: configs.ConfigText) -> dict:
    return tomllib.loads(config.text)


def _telegraf(variant: str, server: str, tmp_path: Path) -> dict:
    folders = configs.Folders(tmp_path).make()
    return _parsed(configs.execd_telegraf_config(EXECD_VARIANTS[variant], server, tmp_path / "csv2lp.toml", folders,
                                                 PORT))


def _without_route_and_command(config: dict) -> dict:
    """The config with the two lines every path changes put back as shipped."""
    config["outputs"]["prometheus_client"][0]["listen"] = SHIPPED_TELEGRAF["outputs"]["prometheus_client"][0]["listen"]
    if "execd" in config["inputs"]:
        config["inputs"]["execd"][0]["command"] = SHIPPED_TELEGRAF["inputs"]["execd"][0]["command"]
    return config


# -- the configs are the shipped ones, but for the named lines ----------------------------


def test_execd_path_runs_the_shipped_telegraf_conf_but_for_its_command_and_port(tmp_path):
    config = _telegraf("execd", "v2", tmp_path)
    execd = config["inputs"]["execd"][0]
    assert execd["command"] == [sys.executable, "-m", "converter", "execd", "--config", str(tmp_path / "csv2lp.toml")]
    assert config["outputs"]["prometheus_client"][0]["listen"] == f"127.0.0.1:{PORT}"
    assert _without_route_and_command(config) == SHIPPED_TELEGRAF


def test_v1_takes_the_commented_influxdb_output_instead_of_influxdb_v2(tmp_path):
    config = _telegraf("execd", "v1", tmp_path)
    assert set(config["outputs"]) == {"prometheus_client", "influxdb"}
    assert config["outputs"]["influxdb"][0] == {
        "urls": ["${INFLUX_URL:?set INFLUX_URL to InfluxDB's address, e.g. http://influxdb:8086}"],
        "database": "${INFLUX_DATABASE:?set INFLUX_DATABASE to the database to write to}",
        "tagdrop": {"csv2lp": ["flow"]},
    }
    shipped = {**SHIPPED_TELEGRAF, "outputs": {"prometheus_client": SHIPPED_TELEGRAF["outputs"]["prometheus_client"]}}
    del config["outputs"]["influxdb"]
    assert _without_route_and_command(config) == shipped


def test_csv2lp_toml_is_the_shipped_one_with_this_runs_folders_and_port(tmp_path):
    config = _parsed(configs.csv2lp_config(EXECD_VARIANTS["execd"], configs.Folders(tmp_path), PORT))
    assert config["spool"] == {**SHIPPED_CSV2LP["spool"], "dir": str(tmp_path / "spool"),
                               "done_dir": str(tmp_path / "done"), "rejects_dir": str(tmp_path / "rejects"),
                               "error_dir": str(tmp_path / "error"), "state_file": str(tmp_path / "state" / "state.json")}
    assert config["flow"] == {**SHIPPED_CSV2LP["flow"], "telegraf_metrics_url": f"http://127.0.0.1:{PORT}/metrics"}
    assert {k: v for k, v in config.items() if k not in ("spool", "flow")} == {
        k: v for k, v in SHIPPED_CSV2LP.items() if k not in ("spool", "flow")}


@pytest.mark.parametrize(("variant", "flow_url", "lines_per_second", "buffer_limit", "disk"), [
    ("execd-unpaced", "", 0, configs.UNPACED_BUFFER, False),
    ("execd-paced", "", None, None, False),
    ("execd-disk", "", 0, configs.UNPACED_BUFFER, True),
])
def test_each_execd_variant_changes_only_what_it_is_named_after(tmp_path, variant, flow_url, lines_per_second,
                                                               buffer_limit, disk):
    csv2lp = _parsed(configs.csv2lp_config(EXECD_VARIANTS[variant], configs.Folders(tmp_path), PORT))
    assert csv2lp["flow"]["telegraf_metrics_url"] == flow_url
    assert csv2lp["pacing"] == ({**SHIPPED_CSV2LP["pacing"], "lines_per_second": 0} if lines_per_second == 0
                                else SHIPPED_CSV2LP["pacing"])
    agent = _telegraf(variant, "v2", tmp_path)["agent"]
    expected = dict(SHIPPED_TELEGRAF["agent"])
    if buffer_limit:
        expected["metric_buffer_limit"] = buffer_limit
    if disk:
        expected.update(buffer_strategy="disk", buffer_directory=str(tmp_path / "buffer"))
    assert agent == expected


@pytest.mark.parametrize("data_format", ["influx", "csv"])
def test_file_paths_read_once_at_start_with_the_shipped_batch_and_flush(tmp_path, data_format):
    source = tmp_path / "in.data"
    config = _parsed(configs.file_telegraf_config(source, data_format, "v2", 1_000, PORT))
    assert "execd" not in config["inputs"] and config["inputs"]["internal"] == SHIPPED_TELEGRAF["inputs"]["internal"]
    (file_input,) = config["inputs"]["file"]
    assert file_input["files"] == [str(source)] and file_input["interval"] == "24h"
    assert file_input["data_format"] == data_format
    shipped = SHIPPED_TELEGRAF["agent"]
    assert config["agent"] == {**shipped, "round_interval": False, "precision": "1ns",
                               "metric_buffer_limit": 1_000 + 2 * shipped["metric_batch_size"]}
    assert config["outputs"]["influxdb_v2"] == SHIPPED_TELEGRAF["outputs"]["influxdb_v2"]


def test_an_edit_that_finds_nothing_fails_instead_of_measuring_something_else():
    config = configs.ConfigText("x.toml", "[agent]\n  interval = \"1s\"\n")
    with pytest.raises(configs.ShippedConfigChanged, match=r"x\.toml: \[agent\] has 0 lines setting flush_interval"):
        config.set("[agent]", "flush_interval", "1s")
    with pytest.raises(configs.ShippedConfigChanged, match=r"expected one \[\[inputs\.execd\]\] table, found 0"):
        config.set("[[inputs.execd]]", "command", ["x"])


# -- options ------------------------------------------------------------------------------


def test_skip_takes_slow_paths_kafka_paths_letters_and_keys():
    assert skipped_paths(["slow-paths"]) == ["execd-unpaced", "execd-paced", "execd-disk"]
    assert skipped_paths(["kafka-paths"]) == ["kafka", "kafka-2", "kafka-backlog"]
    assert skipped_paths(["a,g", "direct"]) == ["raw-1", "raw-2", "execd-disk", "direct"]
    assert skipped_paths(["i"]) == ["kafka", "kafka-2"]
    with pytest.raises(SystemExit, match="--skip z: not a path; give slow-paths, kafka-paths, a letter"):
        skipped_paths(["z"])


def test_only_runs_the_paths_named_then_skip_leaves_some_of_those_out():
    keys, left_out = chosen_paths(["kafka-backlog"], ["b", "kafka-paths"])
    assert keys == ["relay", "kafka", "kafka-2"]
    assert left_out == [spec.key for spec in PATHS if spec.key not in keys]
    assert chosen_paths([], [])[0] == [spec.key for spec in PATHS]
    with pytest.raises(SystemExit, match="--only q: not a path"):
        chosen_paths([], ["q"])


def test_kafka_consumer_runs_the_shipped_file_with_only_the_numbers_added():
    shipped = (REPO / "telegraf" / "kafka-consumer.conf").read_text()
    config = configs.kafka_consumer_config(9999)
    parsed = tomllib.loads(config.text)
    assert parsed["inputs"]["kafka_consumer"] == tomllib.loads(shipped)["inputs"]["kafka_consumer"]
    assert parsed["agent"] == tomllib.loads(shipped)["agent"]
    assert parsed["outputs"]["prometheus_client"][0]["listen"] == "127.0.0.1:9999"
    assert parsed["outputs"]["influxdb_v2"][0]["tagdrop"] == {"csv2lp": ["flow"]}
    assert parsed["inputs"]["internal"][0]["tags"] == {"csv2lp": "flow"}
    assert len(config.edits) == 2


# -- the table --------------------------------------------------------------------------


def test_table_ratios_are_to_the_relay_and_the_raw_ceiling_of_the_same_run():
    def run(path, seconds, error=None):
        return {"path": path, "server": "v2", "round": 0, "rows": 1_000, "seconds": seconds, "acked_seconds": seconds,
                "count": 1_000, "check": "complete", "per_series": "exact", "processes": {}, "telegraf": None,
                "settings": [], "error": error, "rows_per_second": 1_000 / seconds if seconds else None}

    rows = table.server_table([run("raw-1", 1.0), run("relay", 4.0), run("execd", 5.0), run("direct", None, "lost 3")])
    execd = next(line for line in rows.splitlines() if line.startswith("| d."))
    assert "| 200 | 5.0 | 0.80× | 0.20× |" in execd
    direct = next(line for line in rows.splitlines() if line.startswith("| h."))
    assert "| – | – | – | – |" in direct and direct.endswith("| lost 3 |")


# -- the real run, on 2,000 rows --------------------------------------------------------

FAST_PATHS = [spec for spec in PATHS if not spec.slow and not spec.kafka]


@pytest.mark.slow
@pytest.mark.telegraf
@pytest.mark.influxdb2
def test_every_fast_path_lands_every_row_into_a_real_influxdb2(telegraf_bin, tmp_path):
    require_influxd2()
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "benchmarks.ingest", "--rows", "2000", "--skip", "slow-paths",
                           "--skip", "kafka-paths", "--data", str(tmp_path / "data"), "--results", str(results)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads((results / "ingest-2000.json").read_text())
    runs = {run["path"]: run for run in document["runs"]}
    assert sorted(runs) == sorted(spec.key for spec in FAST_PATHS)
    for key, run in runs.items():
        assert (key, run["error"], run["count"], run["check"], run["per_series"]) == (key, None, 2000, "complete",
                                                                                      "exact")
        assert run["processes"]["influxd"]["peak_rss_mb"] > 0
        if run["telegraf"] is not None:
            assert (key, run["telegraf"]["metrics_dropped"], run["telegraf"]["overflow_logged"]) == (key, 0, 0)
            assert run["telegraf"]["metrics_written"] >= 2000
    assert {key for key, run in runs.items() if run["telegraf"]} == {"relay", "telegraf-csv", "execd"}
    assert {key for key, run in runs.items() if "csv2lp" in run["processes"]} == {"execd", "direct"}
    markdown = (results / "ingest-2000.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| path |"))
    assert [cell.strip() for cell in header.strip("|").split("|")] == list(table.COLUMNS)
    rows = [line for line in markdown.splitlines() if re.match(r"\| [a-h]\. ", line)]
    assert [row.split(" | ")[0] for row in rows] == [f"| {spec.letter}. {spec.label}" for spec in FAST_PATHS]
    assert all(row.count(" | ") == len(table.COLUMNS) - 1 for row in rows)
    assert document["machine"]["cores"] >= 1 and "load_average" in document["machine"]


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.telegraf
@pytest.mark.influxdb2
def test_every_kafka_path_lands_every_row_through_the_shipped_consumer_config(telegraf_bin, tmp_path):
    require_influxd2()
    require_kafka()
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "benchmarks.ingest", "--rows", "2000", "--only", "kafka-paths",
                           "--data", str(tmp_path / "data"), "--results", str(results)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = {run["path"]: run for run in json.loads((results / "ingest-2000.json").read_text())["runs"]}
    assert sorted(runs) == ["kafka", "kafka-2", "kafka-backlog"]
    for key, run in runs.items():
        assert (key, run["error"], run["count"], run["per_series"]) == (key, None, 2000, "exact")
        assert (key, run["telegraf"]["metrics_dropped"], run["telegraf"]["metrics_written"]) == (key, 0, 2000)
        assert {"broker", "telegraf", "csv2lp", "influxd"} <= set(run["processes"])
    assert "telegraf-2" in runs["kafka-2"]["processes"]
    assert len(runs["kafka-2"]["telegraf"]["per_consumer"]) == 2  # both consumers held partitions (settings say which)
    assert any("backlog: influxd stopped" in line for line in runs["kafka-backlog"]["settings"])


# -- a short count is re-checked before it is called a loss -------------------------------


class _ShortUntilRestart:
    """Counts `short` of `rows` until restarted, then `after_restart`: 1.6.7's short count, or a real loss."""

    def __init__(self, rows: int, short: int, after_restart: int) -> None:
        self.rows, self.answer, self.after_restart, self.restarts = rows, rows - short, after_restart, 0

    def count(self, field: str) -> int:
        return self.answer

    def restart(self) -> None:
        self.restarts += 1
        self.answer = self.after_restart


@pytest.mark.parametrize(("after_restart", "check"), [
    (1_000, r"count 7 short for \d+ s after every write was acknowledged; complete after an influxd restart "
            r"\(time: the acknowledgement's\)"),
    (995, r"lost 5: the count stayed short after an influxd restart"),
])
def test_a_count_that_stops_short_is_recounted_after_a_restart_and_named(after_restart, check):
    target = _ShortUntilRestart(1_000, 7, after_restart)
    progress = watch.Progress()
    started = time.monotonic()
    progress.ack(started + 0.5)
    counted = watch.until_counted(target, "event_id", 1_000, started, progress, timeout=30, stall_s=0.3)
    assert re.fullmatch(check, counted.check), counted.check
    assert (counted.restarted, target.restarts) == (True, 1)
    assert counted.complete == (after_restart == 1_000)
    assert counted.seconds == (pytest.approx(0.5) if counted.complete else None)


def test_a_short_count_is_not_rechecked_while_the_writer_is_still_writing():
    target = _ShortUntilRestart(1_000, 7, 1_000)
    counted = watch.until_counted(target, "event_id", 1_000, time.monotonic(), watch.Progress(), timeout=1.0,
                                  stall_s=0.1, count_from_start=True)
    assert target.restarts == 0 and counted.queries > 1
    assert counted.check == "failed: 993 of 1,000 counted after the 1 s timeout"


def test_by_default_nothing_is_counted_before_the_writer_has_every_row_acknowledged():
    target = _ShortUntilRestart(1_000, 0, 1_000)
    progress = watch.Progress()
    started = time.monotonic()
    counted = watch.until_counted(target, "event_id", 1_000, started, progress, timeout=1.0)
    assert (counted.queries, counted.seconds, counted.check) == (0, None, "failed: 0 of 1,000 counted after the "
                                                                          "1 s timeout")
    progress.ack()
    counted = watch.until_counted(target, "event_id", 1_000, started, progress, timeout=5)
    assert (counted.queries, counted.check) == (1, "complete")
    assert counted.seconds >= counted.acked_seconds
