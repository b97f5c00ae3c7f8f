"""converter.execd.arrivals: inotify tells a file renamed into the spool (complete at once) from one written there."""

from __future__ import annotations

import threading
import time

import pytest

from converter.execd import spool
from converter.execd.arrivals import Arrivals


def wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def arrivals(tmp_path):
    folder = tmp_path / "spool"
    folder.mkdir()
    watcher = Arrivals(folder)
    assert watcher.watching, "inotify is available on Linux"
    return watcher


def test_a_file_renamed_in_is_known_as_such_and_wakes_the_waiter(arrivals):
    hidden = arrivals.folder / ".a.csv.part"
    hidden.write_text("x,y\n1,2\n")
    woke = threading.Event()
    waiter = threading.Thread(target=lambda: (arrivals.wait(30), woke.set()))
    waiter.start()
    hidden.rename(arrivals.folder / "a.csv")
    assert woke.wait(5), "the wait should end when the file arrives, not after 30 s"
    assert wait_for(lambda: arrivals.renamed_in("a.csv"))
    assert not arrivals.renamed_in(".a.csv.part")


def test_a_file_written_in_place_must_settle(arrivals, tmp_path):
    (arrivals.folder / "b.csv").write_text("x\n1\n")
    (tmp_path / "c.csv").write_text("x\n1\n")
    (tmp_path / "c.csv").rename(arrivals.folder / "c.csv")
    assert wait_for(lambda: arrivals.renamed_in("c.csv"))
    assert not arrivals.renamed_in("b.csv")
    # the scan takes the renamed file at once; the one written in place waits for its settle time
    ready = spool.scan(arrivals.folder, ["*.csv"], settle_seconds=60, renamed_in=arrivals.renamed_in)
    assert [c.path.name for c in ready] == ["c.csv"]


def test_rewritten_in_place_after_the_rename_it_must_settle_again(arrivals, tmp_path):
    (tmp_path / "d.csv").write_text("x\n1\n")
    (tmp_path / "d.csv").rename(arrivals.folder / "d.csv")
    assert wait_for(lambda: arrivals.renamed_in("d.csv"))
    with open(arrivals.folder / "d.csv", "a") as handle:
        handle.write("2\n")
    assert wait_for(lambda: not arrivals.renamed_in("d.csv"))


def test_forgetting_a_name_that_left_the_spool(arrivals, tmp_path):
    (tmp_path / "e.csv").write_text("x\n1\n")
    (tmp_path / "e.csv").rename(arrivals.folder / "e.csv")
    assert wait_for(lambda: arrivals.renamed_in("e.csv"))
    arrivals.forget("e.csv")
    assert not arrivals.renamed_in("e.csv")
