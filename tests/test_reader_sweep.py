"""Every reader entry point x hostile files (issue 24, point 6): each run ends in a clean refusal or
exact books, never a traceback, at a memory near a normal run's and in seconds.

Entry points: `convert FILE`, `convert -` (stdin), `inspect FILE`, and a file dropped in execd's
spool. Files: empty, a 0-byte .gz, a truncated gzip (in its header; after 2,000 good rows),
binary garbage (plain; named .gz), 20 MB without a line break, bombs after good rows (gzip,
bz2, zstd), bz2 and zstd truncated after good rows.
The files are generated; the table says what each entry point must say of each.
"""

from __future__ import annotations

import gzip
import random
import re
import zlib
from pathlib import Path

import pyarrow as pa
import pytest

from test_execd import children, write_config  # noqa: F401 (children: a fixture)
from test_hostile_limits import EXTRA_MB, HOSTILE_SECONDS, assert_books, rows, run_measured

HEADER = b"host,v,time\n"
MIB = 1 << 20


def _gzip_bomb(head: bytes, mib: int) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    return packer.compress(head) + b"".join(packer.compress(bytes(MIB)) for _ in range(mib)) + packer.flush()


def _truncated(data: bytes, keep: float) -> bytes:
    packed = gzip.compress(data)
    return packed[: int(len(packed) * keep)]


def _packed(codec: str, *parts: bytes) -> bytes:
    """`parts` compressed by Arrow (bz2, zstd), written one after the other."""
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, codec) as out:
        for part in parts:
            out.write(part)
    return sink.getvalue().to_pybytes()


def _cut(packed: bytes, keep: float) -> bytes:
    return packed[: int(len(packed) * keep)]


def _garbage(size: int) -> bytes:
    return random.Random(24).randbytes(size)


# name -> (the bytes, rows converted before the problem (None: refused at the header), what the error says)
HOSTILE = {
    "empty.csv": (lambda: b"", None, r"the file is empty"),
    "empty.csv.gz": (lambda: b"", None, r"the file is empty"),
    "truncated-header.csv.gz": (lambda: _truncated(HEADER + rows(50), 0.5), None,
                                r"cannot read \(gzip\): Truncated compressed stream"),
    "truncated-rows.csv.gz": (lambda: _truncated(HEADER + rows(2000), 0.6), ("some", 2000),
                              r"Truncated compressed stream|compressed data ends|truncated"),
    # bz2 decompresses whole 900 kB blocks: enough rows that the cut is past the first.
    "truncated-rows.csv.bz2": (lambda: _cut(_packed("bz2", HEADER + rows(100_000)), 0.6), ("some", 100_000),
                               r"cannot decompress past line \d+: Truncated compressed stream"),
    "truncated-rows.csv.zst": (lambda: _cut(_packed("zstd", HEADER + rows(100_000)), 0.6), ("some", 100_000),
                               r"cannot decompress past line \d+: Truncated compressed stream"),
    "garbage.csv": (lambda: _garbage(300_000), None, r"not valid UTF-8|NUL bytes|not UTF-8 CSV text"),
    "garbage.csv.gz": (lambda: _garbage(3000), None, r"cannot read \(gzip\)|NUL bytes"),
    "line.csv": (lambda: b"a" * (20 * MIB), None, r"the header does not end within the first 2 MiB"),
    "bomb.csv.gz": (lambda: _gzip_bomb(HEADER + rows(100), 256), 100, r"decompresses to more than 200 times its size"),
    "bomb.csv.bz2": (lambda: _packed("bz2", HEADER + rows(100), *(bytes(MIB) for _ in range(64))), 100,
                     r"decompresses to more than 200 times its size"),
    "bomb.csv.zst": (lambda: _packed("zstd", HEADER + rows(100), *(bytes(MIB) for _ in range(256))), 100,
                     r"decompresses to more than 200 times its size"),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sweep")
    made = {}
    for name, (content, _, _) in HOSTILE.items():
        made[name] = folder / name
        made[name].write_bytes(content())
    made["good.csv"] = folder / "good.csv"
    made["good.csv"].write_bytes(HEADER + rows(102))
    return made


@pytest.fixture(scope="module")
def normal(hostile, tmp_path_factory):
    run = run_measured(tmp_path_factory.mktemp("normal"), str(hostile["good.csv"]), "-t", "host", "-o", "out.lp")
    assert run.status == 0, run.stderr
    return run


@pytest.mark.parametrize("entry", ["convert", "stdin", "inspect"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_each_entry_point_ends_each_hostile_file_cleanly(hostile, normal, tmp_path, entry, name):
    path = hostile[name]
    if entry == "convert":
        run = run_measured(tmp_path, str(path), "-t", "host", "-o", "out.lp")
    elif entry == "stdin":
        run = run_measured(tmp_path, "-", "-m", "m", "-t", "host", "-o", "out.lp", stdin=path)
    else:
        run = run_measured(tmp_path, "inspect", str(path), "-t", "host")
    _, converted, said = HOSTILE[name]
    shown = "<stdin>" if entry == "stdin" else str(path)
    print(f"{entry} {name}: exit {run.status}, {run.seconds:.2f} s, {run.peak_mb:.0f} MB "
          f"(normal {normal.seconds:.2f} s, {normal.peak_mb:.0f} MB)")
    assert "Traceback" not in run.stderr
    assert run.status == 1, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("csv2lp: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"csv2lp: error: {shown}:"), run.stderr
    assert re.search(said, errors[0]), errors[0]
    assert run.peak_mb < normal.peak_mb + EXTRA_MB
    assert run.seconds < HOSTILE_SECONDS
    if entry == "inspect":
        return
    assert run.summary is not None
    written = run.summary["lines_written"]
    assert run.summary["rows_read"] == written + run.summary["rows_rejected"]
    lines = (tmp_path / "out.lp").read_bytes().splitlines() if (tmp_path / "out.lp").exists() else []
    assert len(lines) == written
    if converted is None:
        assert_books(run, read=0, written=0, rejected=0)
    elif isinstance(converted, tuple):  # the rows before the damage, and not all of them
        assert 0 < written < converted[1]
    else:
        assert written == converted


def test_execd_moves_each_hostile_file_to_error_with_one_line_and_keeps_running(hostile, tmp_path, children):
    spool = tmp_path / "spool"
    spool.mkdir()
    for name in HOSTILE:
        (spool / name).write_bytes(hostile[name].read_bytes())
    (spool / "good.csv").write_bytes(hostile["good.csv"].read_bytes())
    # The movebank preset's columns are not in these files: a mapping of their own.
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('measurement = "m"\n[time]\ncolumn = "time"\n[tags]\nhost = "host"\n')
    config = write_config(tmp_path, spool, extra="")
    config.write_text(config.read_text().replace('preset = "movebank"', f'mapping = "{mapping}"'))
    child = children("--config", str(config))
    for name in HOSTILE:
        child.wait_for_log(rf"^E! {re.escape(str(spool / name))}: .*$", timeout=60)
    child.wait_for_log(r"^I! good\.csv: done in .*: 102 rows, 102 lines, 0 rejected; .*$", timeout=60)
    peak_kb = int(re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{child.process.pid}/status").read_text()).group(1))
    assert child.stop() == 0
    log = child.log()
    print(f"execd: peak {peak_kb / 1024:.0f} MB for {len(HOSTILE)} hostile files and a good one")
    assert "Traceback" not in log
    for name, (_, _, said) in HOSTILE.items():
        errors = [line for line in log.splitlines() if line.startswith(f"E! {spool / name}:")]
        assert len(errors) == 1, log
        assert re.search(said, errors[0]) and f"moved to {spool / 'error' / name}" in errors[0], errors[0]
        assert not (spool / name).exists()
    assert peak_kb / 1024 < 400  # a normal execd run is ~100 MB; the bomb alone took gigabytes before
    lines = [line.rstrip(b"\n") for line in child.lines()]
    assert all(re.fullmatch(rb"m,host=h\d+ v=\d+\.5 \d+", line) for line in lines), lines[:3]
    assert len(lines) > 102 + 100  # good.csv, the bomb's 100 rows before it, the truncated file's first rows
    assert "--" not in "".join(line for line in log.splitlines() if line.startswith("E!"))  # no CLI options
