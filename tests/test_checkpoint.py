"""converter.execd.checkpoint: the execd state file round-trips, is replaced atomically and refuses garbage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from converter.execd import checkpoint
from converter.execd.checkpoint import FileIdentity, FileProgress, FinishedFile, State

IDENTITY = FileIdentity("gps.csv", dev=64769, ino=1234, size=98765, mtime_ns=1_700_000_000_123_456_789,
                        head_sha256="ab" * 32)


def sample_state() -> State:
    progress = FileProgress(IDENTITY, sha256="cd" * 32, started_at="2026-01-02T03:04:05Z",
                            emitted_through_line=120_001, replay_from_line=115_001, lines_emitted=125_000, runs=2,
                            rejects_path="/spool/rejects/gps.csv.rejects.csv")
    done = FinishedFile("old.csv", "done", "/spool/done/old.csv", lines=10, rejected=1,
                        finished_at="2026-01-01T00:00:00Z")
    failed = FinishedFile("bin.csv", "error", "/spool/error/bin.csv", 0, 0, "2026-01-01T00:00:01Z",
                          message="bin.csv: the header line holds NUL bytes")
    return State(progress, {"ef" * 32: done, "01" * 32: failed})


def test_missing_state_file_is_an_empty_state(tmp_path):
    state = checkpoint.load(tmp_path / "state.json")
    assert state.current is None and state.finished == {}


def test_save_then_load_gives_back_every_field(tmp_path):
    path = tmp_path / "state.json"
    checkpoint.save(path, sample_state())
    assert checkpoint.load(path) == sample_state()
    document = json.loads(path.read_text())
    assert document["version"] == 2
    assert document["current"]["emitted_through_line"] == 120_001
    assert document["current"]["identity"]["ino"] == 1234


def test_save_leaves_no_temp_file_and_replaces_the_old_state(tmp_path):
    path = tmp_path / "state.json"
    checkpoint.save(path, sample_state())
    checkpoint.save(path, State())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert checkpoint.load(path) == State()


def test_files_awaiting_confirmation_round_trip_and_come_before_the_current_one(tmp_path):
    state = sample_state()
    waiting = FileProgress(FileIdentity("a.csv", 1, 2, 3, 4, "ef" * 32), sha256="aa" * 32, started_at="2026-01-02T03:00:00Z",
                           emitted_through_line=9, replay_from_line=4, lines_emitted=8, emitted_all=True)
    state.unconfirmed.append(waiting)
    checkpoint.save(tmp_path / "state.json", state)
    loaded = checkpoint.load(tmp_path / "state.json")
    assert loaded == state
    assert [p.identity.name for p in loaded.open_files()] == ["a.csv", "gps.csv"]
    loaded.close(loaded.unconfirmed[0])
    assert [p.identity.name for p in loaded.open_files()] == ["gps.csv"]


def test_a_version_1_state_file_is_read_as_it_is(tmp_path):
    document = sample_state().to_json()
    document["version"] = 1
    del document["unconfirmed"]
    (tmp_path / "state.json").write_text(json.dumps(document))
    assert checkpoint.load(tmp_path / "state.json") == sample_state()


def test_sent_before_knows_only_files_that_were_sent_completely():
    state = sample_state()
    assert state.sent_before("ef" * 32).name == "old.csv"
    assert state.sent_before("01" * 32) is None  # it went to error/: dropping it again tries again
    assert state.sent_before("99" * 32) is None


@pytest.mark.parametrize("text, problem", [
    ("", "Expecting value"),
    ("{\"version\": 1, \"current\": {\"identity\": {}}", "Expecting"),
    ("{\"version\": 3, \"finished\": {}}", "version 3, expected 2"),
    ("{\"version\": 1, \"current\": null, \"finished\": {\"x\": {\"name\": \"a\"}}}", "missing"),
    ("[1, 2]", "'list' object has no attribute"),
])  # fmt: skip
def test_a_state_file_that_is_not_ours_raises_corrupt_state(tmp_path, text, problem):
    path = tmp_path / "state.json"
    path.write_text(text)
    with pytest.raises(checkpoint.CorruptStateError, match=problem) as info:
        checkpoint.load(path)
    assert str(path) in str(info.value)


def test_a_process_killed_while_saving_leaves_the_old_or_the_new_state(tmp_path):
    """SIGKILL a process that saves in a loop; the file must always load, holding one whole state."""
    path = tmp_path / "state.json"
    script = textwrap.dedent(f"""
        import sys
        from converter.execd import checkpoint
        from converter.execd.checkpoint import State, FinishedFile
        state = State()
        for n in range(100000):
            state.finished[f"{{n:064x}}"] = FinishedFile(f"f{{n}}.csv", "done", None, n, 0, "now")
            checkpoint.save({str(path)!r}, state)
            if n == 20:
                print("saving", flush=True)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "saving\n"
    child.kill()
    child.wait(timeout=10)
    state = checkpoint.load(path)
    n = len(state.finished)
    assert n >= 21
    assert [record.lines for record in state.finished.values()] == list(range(n))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "state.json"]
    assert leftovers in ([], [".state.json.tmp"])  # a temp file is never mistaken for the state


def test_save_fsyncs_the_file_before_renaming_it(tmp_path, monkeypatch):
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    checkpoint.save(tmp_path / "state.json", sample_state())
    assert calls == ["fsync", "replace", "fsync"]  # the data, the rename, then the folder entry


def test_a_second_process_waits_for_the_state_files_lock_and_says_so(tmp_path):
    import threading

    from converter.execd.checkpoint import hold_lock

    state = tmp_path / "state.json"
    stop = threading.Event()
    first = hold_lock(state, stop, warn=lambda m: None)
    assert first is not None
    said: list[str] = []
    got: list[int | None] = []
    waiter = threading.Thread(target=lambda: got.append(hold_lock(state, stop, warn=said.append, warn_after=0.1)))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive() and said == [f"another csv2lp execd holds {state}; waiting for it to exit"]
    os.close(first)  # the first process exits
    waiter.join(5)
    assert got and got[0] is not None
    stop.set()
    assert hold_lock(state, stop, warn=lambda m: None) is None  # stopped while waiting: gives up
