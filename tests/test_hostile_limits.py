"""Memory stays bounded whatever the input (issue 24): each hostile file runs as a child process
whose peak RSS (os.wait4) and seconds are measured against a normal run measured in the same
test, and whose books are checked (rows read = lines written + rows rejected).

Before: a 200 MB file with no line break peaked at ~1,475 MB and a gzip bomb (1 GiB of NUL) at
~7,758 MB, both ending in "the file is empty"; a 50 MB cell failed the file with "a quoted value
does not end within 2 MiB" (exit 1) and the 100 rows after it left the books. The bounds
below are far under those numbers and far over what a loaded machine adds to a normal run.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
TIMEOUT_S = 120
HEADER = b"host,v,time\n"
MIB = 1 << 20
# A hostile run may take this much more than the normal one: a few 2 MiB blocks in flight, the
# long row's first KiB, Python's own arenas. The defects it guards against took 1.4-7.7 GB.
EXTRA_MB = 150
HOSTILE_SECONDS = 30  # the slowest case (1 GiB decompressed to its limit) takes ~1 s alone


def rows(count: int, start: int = 0) -> bytes:
    return b"".join(b"h%d,%d.5,2020-01-01T00:%02d:%02dZ\n" % (i, i, i // 60 % 60, i % 60)
                    for i in range(start, start + count))


@dataclass
class Measured:
    status: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float
    summary: dict | None


# The child's peak RSS comes from a small wrapper process that starts it: a child forked from
# pytest itself would report pytest's RSS at the fork as its peak (Linux copies the high-water
# mark with the memory map), while the wrapper is a few MB when it forks.
MEASURE = """
import resource, subprocess, sys
report, timeout, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
try:
    status = subprocess.run(argv, timeout=timeout).returncode
except subprocess.TimeoutExpired:
    status = -9
with open(report, "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(status if status >= 0 else 99)
"""


def run_measured(tmp_path: Path, *args: str, stdin: Path | None = None) -> Measured:
    """`python -m converter ARGS` (reading `stdin`, or nothing): its exit status, output, wall time and
    peak RSS (RUSAGE_CHILDREN)."""
    summary = tmp_path / f"summary-{time.monotonic_ns()}.json"
    if args and args[0] not in ("inspect", "execd"):
        args = (*args, "--summary-json", str(summary))
    out, err, report = tmp_path / "child.out", tmp_path / "child.err", tmp_path / "child.rss"
    began = time.monotonic()
    with open(out, "wb") as stdout, open(err, "wb") as stderr, open(stdin or os.devnull, "rb") as given:
        done = subprocess.run([sys.executable, "-c", MEASURE, str(report), str(TIMEOUT_S), sys.executable, "-m",
                               "converter", *args], stdin=given, stdout=stdout, stderr=stderr,
                              env=ENV, cwd=tmp_path, timeout=TIMEOUT_S + 30)
    seconds = time.monotonic() - began
    assert done.returncode != 99, f"csv2lp {' '.join(args)} did not end within {TIMEOUT_S} s"
    peak_mb = int(report.read_text()) / 1024  # Linux gives KiB
    text = err.read_text(errors="replace")
    print(f"measured: csv2lp {' '.join(a[-40:] for a in args)}: exit {done.returncode}, {seconds:.2f} s, "
          f"peak RSS {peak_mb:.0f} MB")  # pytest -s shows them
    assert "Traceback" not in text, text
    return Measured(done.returncode, out.read_text(errors="replace"), text, seconds, peak_mb,
                    json.loads(summary.read_text()) if summary.exists() else None)


def assert_books(run: Measured, *, read: int, written: int, rejected: int) -> None:
    assert run.summary is not None, run.stderr
    s = run.summary
    assert (s["rows_read"], s["lines_written"], s["rows_rejected"]) == (read, written, rejected), run.stderr
    assert s["rows_read"] == s["lines_written"] + s["rows_rejected"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    made = {"good": folder / "good.csv", "line": folder / "line.csv", "cell": folder / "cell.csv",
            "first_cell": folder / "first-cell.csv",
            "bomb": folder / "bomb.csv.gz", "header_then_bomb": folder / "header-then-bomb.csv.gz"}
    made["good"].write_bytes(HEADER + rows(102))
    with open(made["line"], "wb") as f:  # 200 MB without a line break
        for _ in range(200):
            f.write(b"a" * 1_000_000)
    with open(made["cell"], "wb") as f:  # row 2 of 102 holds a 50 MB unquoted cell
        f.write(HEADER + rows(1) + b"h1," + b"x" * 50_000_000 + b",2020-01-01T00:00:01Z\n" + rows(100, start=2))
    with open(made["first_cell"], "wb") as f:  # the same cell in row 1, right after the header: Arrow
        # meets it while it opens (it reads its first block then), before any batch
        f.write(HEADER + b"h1," + b"x" * 50_000_000 + b",2020-01-01T00:00:01Z\n" + rows(101, start=2))
    nul = bytes(MIB)
    for name, head in (("bomb", b""), ("header_then_bomb", HEADER + rows(100))):
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip framing
        with open(made[name], "wb") as f:
            f.write(packer.compress(head))
            for _ in range(1024):  # 1 GiB of NUL bytes, ~1 MB compressed
                f.write(packer.compress(nul))
            f.write(packer.flush())
    return made


@pytest.fixture(scope="module")
def normal_mb(files, tmp_path_factory) -> float:
    """The peak RSS of a normal run of this machine, now: what the hostile runs are held to."""
    run = run_measured(tmp_path_factory.mktemp("normal"), str(files["good"]), "-t", "host", "-o", "out.lp")
    assert run.status == 0, run.stderr
    assert_books(run, read=102, written=102, rejected=0)
    return run.peak_mb


@pytest.mark.parametrize("command", ["convert", "inspect"])
def test_a_200_mb_line_without_a_break_is_refused_in_seconds_at_a_normal_memory(files, normal_mb, tmp_path,
                                                                                 command):
    run = run_measured(tmp_path, command, str(files["line"]), "-t", "host", *(["-o", "out.lp"] if command ==
                                                                              "convert" else []))

    assert run.status == 1
    assert run.stderr.strip().splitlines()[-1] == (
        f"csv2lp: error: {files['line']}: the header does not end within the first 2 MiB (the block size): the "
        f"file has no line break. A CSV file starts with a header line; if the header really is longer, raise "
        f"--block-size (execd: block_size in [convert]).")
    assert run.peak_mb < normal_mb + EXTRA_MB, (run.peak_mb, normal_mb)
    assert run.seconds < HOSTILE_SECONDS


@pytest.mark.parametrize(("name", "line", "first_two"), [("cell", 3, ("h0", "h2")), ("first_cell", 2, ("h2", "h3"))],
                         ids=["row-2", "row-1"])
def test_a_50_mb_cell_is_one_rejected_row_and_the_rows_after_it_are_written(files, normal_mb, tmp_path, name, line,
                                                                             first_two):
    run = run_measured(tmp_path, str(files[name]), "-t", "host", "-o", "out.lp", "--rejects", "rejects.csv")

    assert run.status == 3, run.stderr
    assert_books(run, read=102, written=101, rejected=1)
    lines = (tmp_path / "out.lp").read_text().splitlines()
    measurement = files[name].stem
    assert [lp.split(" ")[0] for lp in lines[:2]] == [f"{measurement},host={host}" for host in first_two]
    assert len(lines) == 101
    [reject] = (tmp_path / "rejects.csv").read_text().splitlines()[1:]
    assert reject.split(",")[1:3] == [str(line), "row longer than the block size (2 MiB)"]
    assert len(reject) < 2048  # the row's first KiB, not 50 MB
    assert run.peak_mb < normal_mb + EXTRA_MB, (run.peak_mb, normal_mb)
    assert run.seconds < HOSTILE_SECONDS


def test_a_gzip_bomb_of_nul_bytes_is_refused_at_its_header_in_seconds(files, normal_mb, tmp_path):
    run = run_measured(tmp_path, str(files["bomb"]), "-t", "host", "-o", "out.lp")

    assert run.status == 1
    assert "the header line holds NUL bytes: this is not UTF-8 CSV text" in run.stderr.splitlines()[-1]
    assert run.peak_mb < normal_mb + EXTRA_MB, (run.peak_mb, normal_mb)
    assert run.seconds < HOSTILE_SECONDS


def test_a_gzip_bomb_after_good_rows_stops_at_the_expansion_limit_after_converting_them(files, normal_mb,
                                                                                        tmp_path):
    run = run_measured(tmp_path, str(files["header_then_bomb"]), "-t", "host", "-o", "out.lp",
                       "--rejects", "rejects.csv")

    assert run.status == 1
    message = [line for line in run.stderr.splitlines() if line.startswith("csv2lp: error:")]
    assert len(message) == 1 and "stopped after line 102: it decompresses to more than 200 times its size" in \
        message[0] and "Raise --max-expansion (0: no limit)" in message[0], run.stderr
    # The 100 good rows are written; the NUL "row" the bomb began is the one rejected row.
    assert_books(run, read=101, written=100, rejected=1)
    assert run.peak_mb < normal_mb + EXTRA_MB, (run.peak_mb, normal_mb)
    assert run.seconds < HOSTILE_SECONDS


def test_a_small_repetitive_gzip_is_never_refused_as_a_bomb(tmp_path):
    """The ratio is checked past 32 MiB only: 4 MiB of one repeated row (~1,000x) converts."""
    row = b"h1,1.5,2020-01-01T00:00:01Z\n"
    (tmp_path / "same.csv.gz").write_bytes(gzip.compress(HEADER + row * (4 * MIB // len(row))))

    run = run_measured(tmp_path, "same.csv.gz", "-t", "host", "-o", "out.lp", "--duplicates", "off")

    assert run.status == 0, run.stderr
    assert run.summary["lines_written"] == 4 * MIB // len(row)


def test_max_expansion_0_lifts_the_limit(files, tmp_path):
    run = run_measured(tmp_path, str(files["header_then_bomb"]), "-t", "host", "-o", "out.lp",
                       "--rejects", "rejects.csv", "--max-expansion", "0", "--block-size", str(MIB))

    assert run.status == 3, run.stderr  # read to the end: the 1 GiB NUL row is one rejected row
    assert_books(run, read=101, written=100, rejected=1)


# --- execd: the same limits, and a log that names csv2lp.toml's settings --------------------------

from test_execd import SAMPLE_ROWS, children, drop, write_config  # noqa: E402,F401 (children: a fixture)
from support.data import SAMPLE  # noqa: E402


def test_execd_rejects_a_row_longer_than_its_block_size_and_sends_the_rows_after_it(tmp_path, children):
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    cells = lines[5].split(b",")
    cells[5] = b"x" * 300_000  # a cell past [convert] block_size = 65536: row 5 of the file, line 6
    lines[5] = b",".join(cells)
    spool = tmp_path / "spool"
    drop(spool, b"".join(lines), "long.csv")
    child = children("--config", str(write_config(tmp_path, spool, extra="block_size = 65536\n")))
    done = child.wait_for_log(r"^W! long\.csv: done in .*$").group()
    assert child.stop() == 0

    assert len(child.lines()) == SAMPLE_ROWS - 1
    assert f"{SAMPLE_ROWS:,} rows, {SAMPLE_ROWS - 1:,} lines, 1 rejected" in done
    assert "1 x row longer than the block size (64 KiB)" in done
    rejects = (spool / "rejects" / "long.csv.rejects.csv").read_text().splitlines()
    assert rejects[1].split(",")[1:3] == ["6", "row longer than the block size (64 KiB)"]
    assert "--block-size" not in child.log()


def test_execd_names_block_size_in_its_config_for_a_header_too_long(tmp_path, children):
    spool = tmp_path / "spool"
    drop(spool, b"a" * 300_000, "noline.csv")
    config = write_config(tmp_path, spool, extra="block_size = 65536\n")
    child = children("--config", str(config))
    error = child.wait_for_log(r"^E! .*$").group()
    assert child.stop() == 0

    assert "the header does not end within the first 64 KiB (the block size)" in error
    assert f"raise block_size in [convert] of {config}" in error and "--block-size" not in error


# --- 50,000 columns: refused when the header is read, naming --max-columns -------------------------
# Before: every column was typed and encoded one by one, ~1 ms each: a 50,000-column file of two
# rows took ~42 s (68 s on a loaded machine) and peaked at ~400-526 MB before writing its 2 lines.

WIDE_COLUMNS = 50_000


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wide") / "wide.csv"
    names = ["host", "time", *(f"c{i}" for i in range(WIDE_COLUMNS - 2))]
    row = ",".join(["h1", "2020-01-01T00:00:00Z", *("1" for _ in range(WIDE_COLUMNS - 2))])
    path.write_text(",".join(names) + "\n" + row + "\n" + row + "\n")
    return path


def too_wide(path: Path, columns: int, limit: int, *, where: str = "--max-columns") -> str:
    return (f"csv2lp: error: {path}: the header has {columns:,} columns, more than the {limit:,} {where} allows "
            f"(each column costs about a millisecond and memory: 50,000 take a minute and 500 MB). Raise "
            f"--max-columns (execd: max_columns in [convert]) to convert it, or 0 for no limit.")


def test_a_50000_column_header_is_refused_while_the_header_is_read_in_well_under_a_second(wide):
    from converter.errors import InputError
    from converter.read.inputs import open_source
    began = time.monotonic()
    with pytest.raises(InputError, match=r"the header has 50,000 columns, more than the 10,000 --max-columns"):
        open_source(str(wide))
    assert time.monotonic() - began < 1.0


@pytest.mark.parametrize("command", ["convert", "inspect"])
def test_a_50000_column_file_is_refused_at_a_normal_memory_and_time(files, normal_mb, wide, tmp_path, command):
    normal = run_measured(tmp_path, *([command] if command == "inspect" else []), str(files["good"]), "-t", "host",
                          *(["-o", "out.lp"] if command == "convert" else []))
    assert normal.status == 0, normal.stderr
    run = run_measured(tmp_path, *([command] if command == "inspect" else []), str(wide), "-t", "host",
                       *(["-o", "wide.lp"] if command == "convert" else []))
    print(f"{command}: 50,000 columns refused in {run.seconds:.2f} s at {run.peak_mb:.0f} MB "
          f"(a 102-row file: {normal.seconds:.2f} s, {normal.peak_mb:.0f} MB)")
    assert run.status == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip() == too_wide(wide, WIDE_COLUMNS, 10_000)
    assert run.seconds < normal.seconds + 2.0  # interpreter start-up dominates both; was 42-68 s
    assert run.peak_mb < normal_mb + 50  # was 400-526 MB
    assert not (tmp_path / "wide.lp").exists() or not (tmp_path / "wide.lp").read_bytes()


def test_max_columns_is_the_widest_header_converted_and_0_lifts_it(tmp_path):
    path = tmp_path / "six.csv"
    path.write_bytes(b"host,time,a,b,c,d\nh1,2020-01-01T00:00:00Z,1,2,3,4\n")
    refused = run_measured(tmp_path, str(path), "-t", "host", "--max-columns", "5")
    assert refused.status == 1 and refused.stderr.strip() == too_wide(path, 6, 5)
    for limit in ("6", "0"):
        run = run_measured(tmp_path, str(path), "-t", "host", "--max-columns", limit)
        assert run.status == 0, run.stderr
        assert_books(run, read=1, written=1, rejected=0)


def test_execd_refuses_a_file_wider_than_max_columns_and_names_its_setting(tmp_path, children):
    spool = tmp_path / "spool"
    drop(spool, SAMPLE.read_bytes(), "wide.csv")
    columns = len(SAMPLE.read_bytes().split(b"\n", 1)[0].split(b","))
    config = write_config(tmp_path, spool, extra="max_columns = 5\n")
    child = children("--config", str(config))
    error = child.wait_for_log(r"^E! .*$").group()
    assert child.stop() == 0
    assert f"the header has {columns:,} columns, more than the 5 max_columns in [convert] of {config}" in error
    assert f"Raise max_columns in [convert] of {config} to convert it" in error and "--max-columns" not in error
    assert child.lines() == []
