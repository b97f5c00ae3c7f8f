"""Keeps benchmarks/ alive: the generator, every peer and the report, on tiny inputs.

Never a timing: these tests check that the benchmark code runs and that its numbers are
sane (each peer writes one line per row, the same points as csv2lp; the report lists
every target). The benchmark itself: `python -m benchmarks` (benchmarks/README.md).
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from line_protocol_parser import parse_line
from support.data import FISHERS, REPO

# `benchmarks` is a top-level folder beside `converter`, not an installed package.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import generate, peers, report  # noqa: E402
from benchmarks.datasets import TINY  # noqa: E402


def _read(path: Path) -> pa.Table:
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))


def _points(path: Path) -> list[tuple]:
    """Every line as (measurement, tags, fields, time), sorted: order-free equality."""
    parsed = (parse_line(line) for line in path.read_text().splitlines())
    return sorted((p["measurement"], sorted(p["tags"].items()), sorted(p["fields"].items()), p["time"]) for p in parsed)


def _renamed(points: list[tuple]) -> list[tuple]:
    """Points keyed by column names (Telegraf, pkg/csv2lp) with csv2lp's preset keys instead."""
    return sorted((m, sorted((peers.TAGS[k], v) for k, v in tags),
                   sorted((peers.field_key(k), v) for k, v in fields), t) for m, tags, fields, t in points)


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    return generate.generate(tmp_path_factory.mktemp("bench") / "tiny.csv", 1_500, seed=11).path


@pytest.fixture(scope="module")
def csv2lp_points(tiny_csv, tmp_path_factory) -> list[tuple]:
    out = tmp_path_factory.mktemp("csv2lp") / "out.lp"
    measured = peers.run_csv2lp(tiny_csv, out.parent, output=str(out))
    assert measured.error is None, measured.error
    return _points(out)


# -- the generator ----------------------------------------------------------------------


def test_generator_gives_the_same_bytes_for_the_same_seed(tmp_path):
    first = generate.generate(tmp_path / "a.csv", 70_000, seed=5, bad_fraction=0.01)
    again = generate.generate(tmp_path / "b.csv", 70_000, seed=5, bad_fraction=0.01)
    other = generate.generate(tmp_path / "c.csv", 70_000, seed=6, bad_fraction=0.01)
    assert first.path.read_bytes() == again.path.read_bytes()
    assert first.path.read_bytes() != other.path.read_bytes()
    assert first.bytes == first.path.stat().st_size


def test_generator_has_the_header_and_column_types_of_the_fishers_file(shared_movebank, tmp_path):
    made = generate.generate(tmp_path / "g.csv", 5_000)
    with gzip.open(FISHERS, "rt", newline="") as source:
        header = source.readline().rstrip("\r\n")
    assert generate.HEADER == header
    real = pacsv.read_csv(FISHERS)
    fake = pacsv.read_csv(made.path)
    assert fake.schema == real.schema.remove_metadata()


def test_generator_empty_cell_pattern_matches_the_fishers_file(tmp_path):
    made = generate.generate(tmp_path / "g.csv", 40_000)
    table = _read(made.path)
    assert table.num_rows == 40_000
    share = {name: table[name].null_count / table.num_rows for name in table.column_names}
    assert 0.27 < share["location-lat"] < 0.34  # failed fixes (30.5 % in the fishers file)
    assert share["location-lat"] == share["location-long"]
    assert 0.88 < share["behavioural-classification"] < 0.94
    always_empty = [c for c in table.column_names if c.startswith("eobs:") and c != "eobs:used-time-to-get-fix"]
    always_empty += ["ground-speed", "heading", "height-above-ellipsoid", "manually-marked-outlier"]
    assert all(share[c] == 1.0 for c in always_empty)
    assert share["eobs:used-time-to-get-fix"] == 0.0
    assert set(table["individual-local-identifier"].to_pylist()) == set(generate.INDIVIDUALS)
    assert len(set(table["event-id"].to_pylist())) == table.num_rows


def test_generator_lines_are_quoted_like_movebank(tmp_path):
    made = generate.generate(tmp_path / "g.csv", 1_000)
    with open(made.path, newline="") as source:
        lines = source.read().splitlines()
    cells = lines[1].split(",")
    assert cells[0].isdigit() and cells[1] == "true"        # numbers and booleans bare
    assert cells[-5:] == ['"gps"', '"Martes pennanti"', '"1072"', '"F1"', '"Martes pennanti LaPoint New York"']
    assert all(len(row) == 25 for row in csv.reader(lines))


def test_generated_bad_rows_are_exactly_the_rows_csv2lp_rejects(tmp_path):
    made = generate.generate(tmp_path / "bad.csv", 3_000, seed=2, bad_fraction=0.03)
    assert 40 < made.bad_rows < 150
    measured = peers.run_csv2lp(made.path, tmp_path)
    assert measured.error is None, measured.error
    assert (measured.rejected, measured.lines) == (made.bad_rows, made.rows - made.bad_rows)


# -- the peers --------------------------------------------------------------------------


@pytest.mark.parametrize("peer", ["tutorial", "pandas"])
def test_python_peer_writes_the_same_points_as_csv2lp(peer, tiny_csv, csv2lp_points, tmp_path):
    out = tmp_path / "out.lp"
    measured = peers.run_peer(peer, tiny_csv, tmp_path, rows=1_500, output=str(out))
    assert measured.error is None, measured.error
    assert measured.lines == 1_500
    assert measured.max_rss_kb > 10_000 and measured.work_seconds > 0
    assert _points(out) == csv2lp_points


def test_read_csv_ceiling_reads_every_row(tiny_csv, tmp_path):
    measured = peers.run_peer("read_csv", tiny_csv, tmp_path, rows=1_500)
    assert (measured.error, measured.lines) == (None, 1_500)


@pytest.mark.telegraf
def test_telegraf_peer_converts_every_row_once(telegraf_bin, tiny_csv, csv2lp_points, tmp_path, monkeypatch):
    monkeypatch.setattr(peers, "TELEGRAF_BIN", telegraf_bin)
    out = tmp_path / "telegraf.lp"
    measured = peers.run_peer("telegraf", tiny_csv, tmp_path, rows=1_500, output=str(out))
    assert measured.error is None, measured.error
    assert measured.lines == 1_500 == len(out.read_text().splitlines())
    # Telegraf keeps the column names as keys: with them renamed, the points are csv2lp's.
    assert _renamed(_points(out)) == csv2lp_points


def test_influx_csv2lp_peer_writes_csv2lp_points(tiny_csv, csv2lp_points, tmp_path):
    if not peers.ANNOTATED_REF_BIN.exists():
        pytest.skip(f"no {peers.ANNOTATED_REF_BIN}: build it with .ci/install-annotated-ref")
    out = tmp_path / "influx.lp"
    measured = peers.run_peer("influx_csv2lp", tiny_csv, tmp_path, rows=1_500, output=str(out))
    assert (measured.error, measured.lines) == (None, 1_500)
    assert _renamed(_points(out)) == csv2lp_points


def test_influx_peer_runs_or_says_why_not(tiny_csv, tmp_path):
    try:
        measured = peers.run_peer("influx", tiny_csv, tmp_path, rows=1_500)
    except peers.Unavailable as exc:
        assert "influx" in str(exc)
        pytest.skip(str(exc))
    assert (measured.error, measured.lines) == (None, 1_500)


def test_a_failing_peer_is_a_result_with_how_far_it_got(tmp_path):
    rows = generate.generate(tmp_path / "g.csv", 20).path.read_text().splitlines()
    cells = rows[11].split(",", 3)
    cells[2] = "not-a-time"  # the 11th row's timestamp
    rows[11] = ",".join(cells)
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join(rows) + "\n")
    measured = peers.run_peer("tutorial", broken, tmp_path, rows=20)
    assert measured.error is not None and measured.error.startswith("ValueError")
    assert measured.lines == 10


# -- the whole suite and its report -----------------------------------------------------


def run_benchmark_suite(tmp_path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks", "--size", TINY.name, "--data", str(tmp_path / "data"),
                           "--results", str(tmp_path / "results")],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_benchmark_suite_runs_end_to_end_and_reports_every_target(tmp_path):
    if not FISHERS.exists():
        pytest.skip(f"needs the shared fishers file ({FISHERS}); the suite without it is "
                    f"test_benchmark_suite_without_the_shared_data_reports_its_targets_n_a")
    done = run_benchmark_suite(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results" / "tiny.json").read_text())
    ran = {(b["extra_info"]["dataset"]["key"], b["extra_info"]["peer"], b["extra_info"]["variant"])
           for b in results["benchmarks"]}
    assert {("large", peer, "plain") for peer in ("read_csv", "csv2lp", "tutorial", "pandas")} <= ran
    assert {("large", "csv2lp", "scaling"), ("bad", "csv2lp", "quarantine"), ("big", "csv2lp", "big")} <= ran
    runs = [info for b in results["benchmarks"] for info in (b["extra_info"], b["extra_info"].get("baseline"))
            if info is not None]
    assert {info["dataset"]["key"] for info in runs} == {"fishers", "large", "base", "bad", "big"}
    for info in runs:
        dataset = info["dataset"]
        for measured in info["rounds"]:
            assert measured["error"] is None, (dataset["key"], measured["error"])
            assert measured["lines"] == dataset["rows"] - dataset["bad_rows"]
    table = (tmp_path / "results" / "tiny.md").read_text()
    assert table.count("| PASS |") + table.count("| FAIL |") + table.count("| n/a |") == 7
    assert "cores" in table and "pyarrow" in table


@pytest.mark.slow
def test_benchmark_suite_without_the_shared_data_reports_its_targets_n_a(tmp_path):
    """A user's clone has no ../shared: the suite still runs, and says why the fishers targets are n/a."""
    empty = tmp_path / "no-shared"
    empty.mkdir()
    done = run_benchmark_suite(tmp_path, env={**os.environ, "CSV2LP_SHARED_DATA": str(empty)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results" / "tiny.json").read_text())
    keys = {b["extra_info"]["dataset"]["key"] for b in results["benchmarks"]}
    assert "large" in keys and "fishers" not in keys
    table = (tmp_path / "results" / "tiny.md").read_text()
    assert table.count("| PASS |") + table.count("| FAIL |") + table.count("| n/a |") == 7
    assert re.search(r"\| csv2lp wall time vs pyarrow.csv.read_csv \(fishers\) \| not measured \| .* \| n/a \|", table)


def test_report_verdicts_follow_the_numbers(tmp_path):
    """The PASS/FAIL logic on made-up numbers, one target on each side of its line."""
    def bench(key, peer, seconds, rows=1_000_000, variant="plain", rss_kb=100_000, bad=0):
        dataset = {"key": key, "label": f"{key} (x)", "path": "-", "rows": rows, "bytes": 2_000_000_000,
                   "bad_rows": bad}
        rounds = [{"lines": rows - bad, "work_seconds": seconds, "process_seconds": seconds + 0.3,
                   "max_rss_kb": rss_kb, "rejected": bad, "error": None}]
        return {"extra_info": {"peer": peer, "variant": variant, "dataset": dataset, "rounds": rounds}}

    def paired(variant_bench, baseline_bench):
        variant_bench["extra_info"]["baseline"] = baseline_bench["extra_info"]
        return variant_bench

    separate = [
        bench("fishers", "read_csv", 1.0), bench("fishers", "csv2lp", 1.2),        # 1.2x: PASS
        bench("fishers", "tutorial", 24.0),                                        # 20x: FAIL
        bench("fishers", "telegraf", 6.0),                                         # 5x: PASS
        bench("fishers", "csv2lp", 1.5, variant="s2"),                             # +25 %: FAIL
        bench("base", "csv2lp", 1.0), bench("large", "csv2lp", 10.5, rows=10_000_000),  # 10.5x: PASS
        bench("bad", "csv2lp", 1.05, variant="quarantine", bad=10_000),           # +5 %: PASS
        bench("big", "csv2lp", 20.0, variant="big", rss_kb=400 * 1024),           # 400 MB: FAIL
    ]
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"benchmarks": separate}))
    _, results, _ = report.load(path)
    assert [t.verdict for t in report.targets(results)] == ["PASS", "FAIL", "PASS", "FAIL", "PASS", "FAIL", "PASS"]
    assert "| FAIL |" in report.render(path)

    # Measured in the same rounds, the baseline decides the ratios, not the separate runs.
    path.write_text(json.dumps({"benchmarks": separate + [
        paired(bench("fishers", "csv2lp", 1.5, variant="s2"), bench("fishers", "csv2lp", 1.4)),   # +7 %: PASS
        paired(bench("large", "csv2lp", 12.0, rows=10_000_000, variant="scaling"),
               bench("base", "csv2lp", 1.0)),                                                     # 12x: FAIL
        paired(bench("bad", "csv2lp", 1.3, variant="quarantine", bad=10_000), bench("base", "csv2lp", 1.0)),
    ]}))
    _, results, _ = report.load(path)
    assert [t.verdict for t in report.targets(results)] == ["PASS", "FAIL", "PASS", "FAIL", "FAIL", "PASS", "FAIL"]
