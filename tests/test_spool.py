"""converter.execd.spool: which files are ready, in what order, what identifies them, and moving them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from converter.execd import spool

PATTERNS = ("*.csv", "*.csv.gz")


def drop(folder: Path, name: str, data: bytes = b"a,b\n1,2\n", *, age: float = 60.0) -> Path:
    path = folder / name
    path.write_bytes(data)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def names(candidates: list[spool.Candidate]) -> list[str]:
    return [c.path.name for c in candidates]


@pytest.mark.parametrize("name, ready", [
    ("gps.csv", True),
    ("gps.csv.gz", True),
    ("GPS.CSV", False),  # case matters, as in the shell
    (".gps.csv", False),  # a drop in progress under a hidden name
    (".gps.csv.part", False),
    ("gps.csv.part", False),
    ("gps.tmp", False),
    ("gps.csv.bz2", False),  # not among this test's patterns
])  # fmt: skip
def test_only_visible_names_matching_a_pattern_are_taken(tmp_path, name, ready):
    drop(tmp_path, name)
    assert names(spool.scan(tmp_path, PATTERNS, settle_seconds=2)) == ([name] if ready else [])


def test_subfolders_and_symlinks_are_never_taken(tmp_path):
    (tmp_path / "done.csv").mkdir()
    target = drop(tmp_path, "real.txt")
    (tmp_path / "link.csv").symlink_to(target)
    assert names(spool.scan(tmp_path, PATTERNS, settle_seconds=0)) == []


def test_a_file_modified_within_the_settle_time_waits(tmp_path):
    drop(tmp_path, "old.csv", age=10)
    drop(tmp_path, "fresh.csv", age=0.5)
    assert names(spool.scan(tmp_path, PATTERNS, settle_seconds=2)) == ["old.csv"]
    assert names(spool.scan(tmp_path, PATTERNS, settle_seconds=2, now=time.time() + 2)) == ["old.csv", "fresh.csv"]


def test_oldest_first_then_by_name(tmp_path):
    drop(tmp_path, "b.csv", age=30)
    drop(tmp_path, "c.csv", age=50)
    drop(tmp_path, "a.csv", age=30)
    os.utime(tmp_path / "a.csv", ns=(0, (tmp_path / "b.csv").stat().st_mtime_ns))
    assert names(spool.scan(tmp_path, PATTERNS, settle_seconds=2)) == ["c.csv", "a.csv", "b.csv"]


def test_identity_changes_with_content_and_survives_a_rename(tmp_path):
    path = drop(tmp_path, "a.csv", b"x,y\n1,2\n")
    first = spool.identity(path)
    assert (first.name, first.size) == ("a.csv", 8)
    renamed = path.rename(tmp_path / "b.csv")
    assert spool.identity(renamed).ino == first.ino
    renamed.write_bytes(b"x,y\n1,3\n")  # same size, same inode: only the head digest tells
    os.utime(renamed, ns=(first.mtime_ns, first.mtime_ns))
    again = spool.identity(renamed)
    assert (again.ino, again.size, again.mtime_ns) == (first.ino, first.size, first.mtime_ns)
    assert again.head_sha256 != first.head_sha256


def test_content_digest_is_the_sha256_of_the_bytes_and_stops_when_asked(tmp_path):
    import hashlib
    import threading

    data = os.urandom(3 << 20)
    path = drop(tmp_path, "big.csv.gz", data)
    assert spool.content_sha256(path) == hashlib.sha256(data).hexdigest()
    stop = threading.Event()
    stop.set()
    assert spool.content_sha256(path, stop) is None


def test_move_into_never_overwrites(tmp_path):
    done = tmp_path / "done"
    for content in (b"1", b"2", b"3"):
        spool.move_into(done, drop(tmp_path, "gps.csv.gz", content))
    assert sorted(p.name for p in done.iterdir()) == ["gps.1.csv.gz", "gps.2.csv.gz", "gps.csv.gz"]
    assert (done / "gps.csv.gz").read_bytes() == b"1" and (done / "gps.2.csv.gz").read_bytes() == b"3"
    assert list(tmp_path.glob("*.gz")) == []


@pytest.mark.parametrize("name, taken, expected", [
    ("gps.csv", 0, "gps.csv"),
    ("gps.csv", 1, "gps.1.csv"),
    ("gps.csv.rejects.csv", 2, "gps.2.csv.rejects.csv"),
    ("noext", 1, "noext.1"),
])  # fmt: skip
def test_free_name_numbers_before_the_extensions(tmp_path, name, taken, expected):
    for n in range(taken):
        (tmp_path / spool.numbered(name, n)).write_text("")
    assert spool.free_name(tmp_path, name).name == expected
