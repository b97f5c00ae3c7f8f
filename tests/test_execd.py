"""`csv2lp execd` as a real child process: a spool in a temp dir, stdout read, stdin closed.

No Telegraf here (tests/test_telegraf_e2e.py has it): the test plays Telegraf's part.
It reads the child's stdout through a pipe, as Telegraf does, closes stdin to stop it,
and checks exit status, timing, the lines, the folders and the checkpoint.
"""

from __future__ import annotations

import gzip
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import struct
import termios
import textwrap
import threading
import time
from pathlib import Path

import line_protocol_parser
import numpy as np
import pytest
from support.data import REPO, SAMPLE

from converter import execd
from converter.execd import protocol
from converter.errors import ConverterError
from converter.books.rowerrors import CUT_OFF_ROW

SAMPLE_ROWS = 1200
PYTHON = sys.executable
EXIT_TIMEOUT_S = 30.0


def convert_reference(source: Path, *args: str) -> list[bytes]:
    """What `csv2lp convert` prints for the file: execd must send exactly these lines."""
    done = subprocess.run([PYTHON, "-m", "converter", "convert", str(source), "--preset", "movebank", "-q",
                           "--rejects", os.devnull, *args], capture_output=True, timeout=120, cwd=REPO)
    assert done.returncode in (0, 3), done.stderr
    return done.stdout.splitlines(keepends=True)


def write_config(folder: Path, spool: Path, *, lines_per_second: float | None = None, batch_lines: int | None = None,
                 replay_lines: int | None = None, poll_seconds: float = 0.2, extra: str = "") -> Path:
    pacing = ["metric_batch_size = 1000", "metric_buffer_limit = 100000", "flush_interval_seconds = 1",
              "outage_seconds = 4"]
    for key, value in (("lines_per_second", lines_per_second), ("batch_lines", batch_lines),
                       ("replay_lines", replay_lines)):
        if value is not None:
            pacing.append(f"{key} = {value}")
    config = folder / "csv2lp.toml"
    config.write_text(
        f'[spool]\ndir = "{spool}"\npoll_seconds = {poll_seconds}\n\n[convert]\npreset = "movebank"\n{extra}\n'
        "[pacing]\n" + "\n".join(pacing) + "\n"
    )
    return config


def drop(spool: Path, source: Path | bytes, name: str) -> Path:
    """The documented drop protocol: write under a hidden name, then rename into place."""
    spool.mkdir(parents=True, exist_ok=True)
    hidden = spool / f".{name}.part"
    if isinstance(source, Path):
        shutil.copyfile(source, hidden)
    else:
        hidden.write_bytes(source)
    old = time.time() - 60  # already settled: the tests need not wait poll_seconds
    os.utime(hidden, (old, old))
    return hidden.rename(spool / name)


class ExecdChild:
    """`python -m converter execd`, with stdout and stderr read continuously (a full pipe would block it)."""

    def __init__(self, *args: str, argv: list[str] | None = None) -> None:
        argv = argv or [PYTHON, "-m", "converter", "execd", *args]
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
        self.out = bytearray()
        self.err = bytearray()
        self._readers = [threading.Thread(target=self._pump, args=(self.process.stdout, self.out), daemon=True),
                         threading.Thread(target=self._pump, args=(self.process.stderr, self.err), daemon=True)]
        for reader in self._readers:
            reader.start()
        self.stopped_in: float | None = None

    @staticmethod
    def _pump(stream, into: bytearray) -> None:
        while chunk := stream.read1(65536):
            into.extend(chunk)

    def lines(self) -> list[bytes]:
        return bytes(self.out).splitlines(keepends=True)

    def log(self) -> str:
        return self.err.decode("utf-8", "replace")

    def wait_for_log(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log(), re.MULTILINE)
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"execd did not log {pattern!r}; status {self.process.poll()}; log:\n{self.log()}")

    def wait_for_lines(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.lines()) < count:
            assert time.monotonic() < deadline, f"only {len(self.lines())} of {count} lines; log:\n{self.log()}"
            assert self.process.poll() is None, f"execd exited {self.process.returncode}; log:\n{self.log()}"
            time.sleep(0.01)

    def stop(self, how: str = "eof", timeout: float = EXIT_TIMEOUT_S) -> int:
        """Stop as Telegraf does (close stdin), or by SIGTERM / SIGKILL; return the exit status."""
        began = time.monotonic()
        if how == "eof":
            self.process.stdin.close()
        elif how == "sigterm":
            self.process.send_signal(signal.SIGTERM)
        else:
            self.process.kill()
        status = self.process.wait(timeout=timeout)
        self.stopped_in = time.monotonic() - began
        for reader in self._readers:
            reader.join(timeout=5)
        return status

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)


@pytest.fixture
def children():
    started: list[ExecdChild] = []

    def start(*args: str, **kwargs) -> ExecdChild:
        child = ExecdChild(*args, **kwargs)
        started.append(child)
        return child

    yield start
    for child in started:
        child.close()


def state_of(spool: Path) -> dict:
    return json.loads((spool / ".csv2lp-state.json").read_text())


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("E! ")]


# --- the execd contract -------------------------------------------------------------------


def test_sends_a_dropped_file_exactly_as_convert_would_then_exits_0_on_stdin_eof(tmp_path, children):
    spool = tmp_path / "spool"
    drop(spool, SAMPLE, "fishers.csv")
    child = children("--config", str(write_config(tmp_path, spool)))
    child.wait_for_log(r"^I! fishers\.csv: done")

    assert child.lines() == convert_reference(SAMPLE)
    for line in child.lines():
        line_protocol_parser.parse_line(line.decode())
    assert child.stop() == 0
    assert child.stopped_in < 2.0  # Telegraf waits 5 s before its SIGTERM
    assert sorted(p.name for p in spool.iterdir()) == [".csv2lp-state.json", ".csv2lp-state.json.lock", "done", "error",
                                                       "rejects"]
    assert [p.name for p in (spool / "done").iterdir()] == ["fishers.csv"]
    state = state_of(spool)
    assert state["current"] is None
    [record] = state["finished"].values()
    assert (record["name"], record["status"], record["lines"], record["rejected"]) == ("fishers.csv", "done", 1200, 0)
    # Every log line carries a level prefix Telegraf understands.
    assert all(re.match(r"[EWID]! ", line) for line in child.log().splitlines()), child.log()
    assert re.search(r"^I! exiting with status 0 \d\.\d\d s after stdin closed$", child.log(), re.MULTILINE)


def test_stays_alive_while_the_spool_is_empty_and_picks_up_a_file_dropped_later(tmp_path, children):
    spool = tmp_path / "spool"
    child = children("--config", str(write_config(tmp_path, spool)))
    child.wait_for_log(r"^I! pacing: ")
    time.sleep(1.5)
    assert child.process.poll() is None and child.lines() == []
    drop(spool, SAMPLE, "late.csv")
    child.wait_for_lines(SAMPLE_ROWS)
    assert child.stop() == 0
    assert child.lines() == convert_reference(SAMPLE)


def test_stdout_carries_line_protocol_only_even_when_something_prints(tmp_path, children):
    """A stray print() or a write to fd 1 (a library, a C extension) must land on stderr."""
    spool = tmp_path / "spool"
    drop(spool, SAMPLE, "fishers.csv")
    config = write_config(tmp_path, spool)
    script = textwrap.dedent(f"""
        import os, sys, threading, time
        from converter import execd
        def stray():
            time.sleep(0.5)
            print("stray print")
            sys.stdout.flush()
            os.write(1, b"stray write to fd 1\\n")
        threading.Thread(target=stray, daemon=True).start()
        sys.exit(execd.run({str(config)!r}))
    """)
    child = children(argv=[PYTHON, "-c", script])
    child.wait_for_log(r"^I! fishers\.csv: done")
    child.wait_for_log(r"^stray write to fd 1$")
    assert child.stop() == 0
    assert child.lines() == convert_reference(SAMPLE)
    assert re.search(r"^stray print$", child.log(), re.MULTILINE)


def stop_mid_file(tmp_path: Path, children, how: str) -> tuple[Path, ExecdChild, list[bytes]]:
    spool = tmp_path / "spool"
    drop(spool, SAMPLE, "fishers.csv")
    config = write_config(tmp_path, spool, lines_per_second=400, batch_lines=50, replay_lines=100)
    child = children("--config", str(config))
    child.wait_for_lines(300)
    assert child.stop(how) == (0 if how != "sigkill" else -signal.SIGKILL)
    first_run = child.lines()
    assert 300 <= len(first_run) < SAMPLE_ROWS
    assert b"".join(first_run).endswith(b"\n")  # whole lines only, also after SIGKILL
    return config, child, first_run


@pytest.mark.parametrize("how", ["eof", "sigterm"])
def test_a_stop_mid_file_finishes_the_batch_saves_the_checkpoint_and_a_restart_resumes(tmp_path, children, how):
    config, child, first_run = stop_mid_file(tmp_path, children, how)
    assert child.stopped_in < 2.0
    reason = "stdin closed" if how == "eof" else "SIGTERM"
    assert re.search(rf"^I! exiting with status 0 \d\.\d\d s after {reason}$", child.log(), re.MULTILINE)
    reference = convert_reference(SAMPLE)
    assert first_run == reference[: len(first_run)]

    spool = tmp_path / "spool"
    current = state_of(spool)["current"]
    assert current["lines_emitted"] == len(first_run)
    # The sample has one row per line after its header: line n + 1 holds row n.
    assert current["emitted_through_line"] == len(first_run) + 1
    assert len(first_run) - 150 <= current["replay_from_line"] - 1 <= len(first_run) - 100

    second = children("--config", str(config))
    second.wait_for_log(r"^I! fishers\.csv: done")
    assert second.stop() == 0
    resent_from = current["replay_from_line"] - 1
    assert second.lines() == reference[resent_from:]  # the replayed lines, then the rest
    assert "resuming after line" in second.log()


def test_kill_9_mid_file_loses_nothing_and_leaves_no_half_line(tmp_path, children):
    config, _, first_run = stop_mid_file(tmp_path, children, "sigkill")
    second = children("--config", str(config))
    second.wait_for_log(r"^I! fishers\.csv: done")
    assert second.stop() == 0
    reference = convert_reference(SAMPLE)
    assert first_run == reference[: len(first_run)]
    # Every line at least once; only the replay window (100-150 lines) twice.
    assert set(first_run + second.lines()) == set(reference)
    assert len(first_run) + len(second.lines()) - SAMPLE_ROWS <= 150 + 50
    assert state_of(tmp_path / "spool")["current"] is None


PIPE_FULL_BYTES = 60_000  # Linux pipes hold 64 KiB: past this the writer is (about to be) blocked


def unread_bytes(stream) -> int:
    """Bytes waiting in a pipe, read from our end without taking them (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(stream.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def test_a_full_pipe_delays_the_exit_until_the_reader_has_read_everything(tmp_path):
    """Go closes the pipe once the child is gone: execd must not exit with bytes unread."""
    spool = tmp_path / "spool"
    drop(spool, SAMPLE, "fishers.csv")
    config = write_config(tmp_path, spool, lines_per_second=0)
    process = subprocess.Popen([PYTHON, "-m", "converter", "execd", "--config", str(config)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        # Until the child has filled the pipe and waits (an event, not a sleep: on a loaded box its
        # start alone can take seconds, and a stdin closed before it wrote is a different test).
        deadline = time.monotonic() + 60.0
        while unread_bytes(process.stdout) < PIPE_FULL_BYTES:
            assert process.poll() is None and time.monotonic() < deadline, "execd never filled the pipe"
            time.sleep(0.05)
        process.stdin.close()
        time.sleep(1.0)
        assert process.poll() is None, "execd exited with its output unread"
        out = process.stdout.read()
        assert process.wait(timeout=EXIT_TIMEOUT_S) == 0
    finally:
        process.kill()
        process.wait()
    lines = out.splitlines(keepends=True)
    assert lines == convert_reference(SAMPLE)[: len(lines)]
    assert state_of(spool)["current"]["lines_emitted"] == len(lines)


# --- spool behaviour ----------------------------------------------------------------------


def test_the_same_content_dropped_again_is_moved_to_done_without_being_sent(tmp_path, children):
    spool = tmp_path / "spool"
    drop(spool, SAMPLE, "first.csv")
    config = write_config(tmp_path, spool)
    child = children("--config", str(config))
    child.wait_for_log(r"^I! first\.csv: done")
    assert child.stop() == 0

    drop(spool, SAMPLE, "first.csv")  # same name, same content, across a restart
    drop(spool, SAMPLE, "copy.csv")
    again = children("--config", str(config))
    again.wait_for_log(r"^W! copy\.csv: the same content was sent")
    again.wait_for_log(r"^W! first\.csv: the same content was sent on \S+ \(as first\.csv\); moved to \S+first\.1\.csv")
    assert again.stop() == 0
    assert again.lines() == []
    assert sorted(p.name for p in (spool / "done").iterdir()) == ["copy.csv", "first.1.csv", "first.csv"]


def test_a_file_still_being_written_in_place_is_not_read_before_it_is_complete(tmp_path, children):
    spool = tmp_path / "spool"
    spool.mkdir()
    child = children("--config", str(write_config(tmp_path, spool, poll_seconds=1.0)))
    data = SAMPLE.read_bytes()
    with open(spool / "slow.csv", "wb") as handle:  # a plain `cp` into the spool, slowed down
        for start in range(0, len(data), len(data) // 6):
            handle.write(data[start : start + len(data) // 6])
            handle.flush()
            time.sleep(0.5)
    child.wait_for_log(r"^I! slow\.csv: done")
    assert child.stop() == 0
    assert child.lines() == convert_reference(SAMPLE)


def test_rejected_rows_go_to_the_rejects_folder_with_reasons(tmp_path, children):
    lines = SAMPLE.read_text().splitlines(keepends=True)
    lines[10] = lines[10].replace("2011-02-", "2011-13-", 1)  # month 13
    lines[20] = lines[20].rstrip("\n") + ",extra\n"  # one cell too many
    bad = tmp_path / "bad.csv"
    bad.write_text("".join(lines))
    spool = tmp_path / "spool"
    drop(spool, bad, "bad.csv")
    child = children("--config", str(write_config(tmp_path, spool)))
    message = child.wait_for_log(r"^W! bad\.csv: done in .*$").group()
    assert child.stop() == 0

    assert child.lines() == convert_reference(bad)
    assert len(child.lines()) == SAMPLE_ROWS - 2
    assert "1,200 rows, 1,198 lines, 2 rejected" in message
    assert "1 x unparseable time in column 'timestamp'" in message and "1 x ragged row" in message
    rejects = (spool / "rejects" / "bad.csv.rejects.csv").read_text().splitlines()
    assert rejects[0].startswith("file,line,reason,value,event-id,")
    assert [row.split(",")[1:3] for row in rejects[1:]] == [["11", "unparseable time in column 'timestamp'"],
                                                           ["21", "ragged row: 26 cells where the header has 25"]]
    assert [p.name for p in (spool / "done").iterdir()] == ["bad.csv"]


@pytest.mark.parametrize("name, content, reason", [
    ("binary.csv", bytes(range(256)) * 64, r"the header line holds NUL bytes"),
    ("other.csv", b"a,b\n1,2\n", r"column 'timestamp' \(time\) is not in the header"),
    ("notgzip.csv.gz", b"event-id,timestamp\n1,2020-01-01 00:00:00.000\n", r"cannot read \(gzip\)"),
    ("empty.csv", b"", r"the file is empty"),
])  # fmt: skip
def test_a_file_that_cannot_be_read_goes_to_error_with_one_e_line_and_the_loop_goes_on(
        tmp_path, children, name, content, reason):
    spool = tmp_path / "spool"
    drop(spool, content, name)
    drop(spool, SAMPLE, "good.csv")
    os.utime(spool / "good.csv", ns=(0, (spool / name).stat().st_mtime_ns + 1))  # after the bad one
    child = children("--config", str(write_config(tmp_path, spool)))
    child.wait_for_log(r"^I! good\.csv: done")
    assert child.stop() == 0

    [error] = error_lines(child.log())
    assert re.search(rf"^E! \S*{re.escape(name)}: .*{reason}.*; moved to \S+/error/{re.escape(name)}$", error), error
    assert [p.name for p in (spool / "error").iterdir()] == [name]
    assert child.lines() == convert_reference(SAMPLE)
    records = {r["name"]: r for r in state_of(spool)["finished"].values()}
    assert records[name]["status"] == "error" and records["good.csv"]["status"] == "done"


def test_a_damaged_gzip_tail_sends_the_lines_before_it_then_goes_to_error(tmp_path, children):
    whole = gzip.compress(SAMPLE.read_bytes() * 40)  # 48,000 rows, several read blocks
    spool = tmp_path / "spool"
    drop(spool, whole[: len(whole) * 3 // 4], "cut.csv.gz")
    child = children("--config", str(write_config(tmp_path, spool, lines_per_second=0)))
    error = child.wait_for_log(r"^E! .*$").group()
    assert child.stop() == 0
    cut_line = re.search(r"cut\.csv\.gz: cannot decompress past line (\d+): ", error)
    assert cut_line is not None, error
    sent = len(child.lines())
    rejects_file = spool / "rejects" / "cut.csv.gz.rejects.csv"
    assert f"(stopped after {sent:,} lines were sent, {sent:,} in this run; rejected rows saved to " \
           f"{rejects_file}); moved to" in error
    assert [p.name for p in (spool / "error").iterdir()] == ["cut.csv.gz"]
    # Every whole row before the damage was read: the one it cuts is the last reject, on that line.
    rejects = rejects_file.read_text().splitlines()
    assert rejects[-1].split(",")[1:3] == [cut_line.group(1), CUT_OFF_ROW.text]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv (util-linux) to drop the capability that lets root read any file")
def test_a_file_without_read_permission_goes_to_error(tmp_path, children):
    """Root reads every file: the child runs without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH, like any user."""
    spool = tmp_path / "spool"
    drop(spool, SAMPLE, "secret.csv").chmod(0o000)
    drop(spool, SAMPLE, "open.csv")
    argv = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search",
            PYTHON, "-m", "converter", "execd", "--config", str(write_config(tmp_path, spool))]
    child = children(argv=argv)
    child.wait_for_log(r"^I! open\.csv: done")
    assert child.stop() == 0
    [error] = error_lines(child.log())
    assert re.fullmatch(r"E! \S+/secret\.csv: cannot read: Permission denied; moved to \S+/error/secret\.csv", error)
    assert child.lines() == convert_reference(SAMPLE)


def test_an_unexpected_error_sends_that_file_to_error_and_the_loop_goes_on(tmp_path, children):
    """A bug met by one file (simulated here) must not stop the others nor make Telegraf restart us forever."""
    spool = tmp_path / "spool"
    drop(spool, SAMPLE, "boom.csv")
    drop(spool, SAMPLE, "fine.csv")
    os.utime(spool / "fine.csv", ns=(0, (spool / "boom.csv").stat().st_mtime_ns + 1))
    config = write_config(tmp_path, spool)
    script = textwrap.dedent(f"""
        import sys
        from converter import execd
        from converter import pipeline
        real = pipeline.iter_blocks
        def failing(source, *args, **kwargs):
            if source.name.endswith("boom.csv"):
                raise RuntimeError("simulated bug")
            return real(source, *args, **kwargs)
        pipeline.iter_blocks = failing  # what the spooler's pipeline.iter_part_blocks calls
        sys.exit(execd.run({str(config)!r}))
    """)
    child = children(argv=[PYTHON, "-c", script])
    child.wait_for_log(r"^I! fine\.csv: done")
    assert child.stop() == 0
    [error] = error_lines(child.log())
    assert re.fullmatch(r"E! \S+/boom\.csv: cannot convert: RuntimeError: simulated bug \(stopped after 0 lines were "
                        r"sent, 0 in this run\); please report this; moved to \S+/error/boom\.csv", error), error
    assert child.lines() == convert_reference(SAMPLE)


def test_a_corrupt_state_file_is_kept_aside_and_the_loop_starts_afresh(tmp_path, children):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / ".csv2lp-state.json").write_text("{ this is not json")
    drop(spool, SAMPLE, "fishers.csv")
    child = children("--config", str(write_config(tmp_path, spool)))
    child.wait_for_log(r"^I! fishers\.csv: done")
    assert child.stop() == 0
    [error] = error_lines(child.log())
    assert "not a csv2lp state file" in error and "started with an empty state" in error
    assert len(list(spool.glob(".csv2lp-state.json.corrupt-*"))) == 1
    assert len(child.lines()) == SAMPLE_ROWS


# --- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ('[spool]\ndir = "s"\nwatch = 1\n[convert]\npreset = "movebank"\n',
     r"unknown setting \[spool\] watch; the settings there are dir, patterns"),
    ('[spool]\ndir = "s"\n[convert]\npreset = "movebank"\n[output]\nx = 1\n', r"unknown section \[output\]"),
    ('[convert]\npreset = "movebank"\n', r"\[spool\] dir is missing"),
    ('[spool]\ndir = "s"\n', r"\[convert\] needs preset"),
    ('[spool]\ndir = "s"\n[convert]\npreset = "movebank"\nmapping = "m.toml"\n', "cannot both be set"),
    ('[spool]\ndir = "s"\n[convert]\npreset = "nope"\n', "no preset named 'nope'"),
    ('[spool]\ndir = "s"\npoll_seconds = "2"\n[convert]\npreset = "movebank"\n', r"poll_seconds = '2' has the wrong type"),
    ('[spool]\ndir = "s"\n[convert]\npreset = "movebank"\nprecision = "n"\n', r"precision = 'n'; use ns, us, ms or s"),
    ('[spool]\ndir = "s"\n[convert]\npreset = "movebank"\n[pacing]\nmetric_buffer_limit = 1000\n',
     r"metric_buffer_limit \(1,000\) must be more than twice"),
    ('[spool\n', "not valid TOML"),
])  # fmt: skip
def test_bad_settings_are_refused_naming_the_file_and_key(tmp_path, text, message):
    config = tmp_path / "csv2lp.toml"
    config.write_text(text)
    with pytest.raises(ConverterError, match=message) as info:
        execd.load_settings(str(config))
    assert str(config) in str(info.value)


def test_a_bad_config_exits_1_with_a_single_e_line(tmp_path):
    config = tmp_path / "csv2lp.toml"
    config.write_text('[spool]\ndir = "s"\nwatch = 1\n')
    done = subprocess.run([PYTHON, "-m", "converter", "execd", "--config", str(config)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 1 and done.stdout == ""
    assert re.fullmatch(r"E! csv2lp execd: \S+csv2lp\.toml: unknown setting \[spool\] watch; .*\n", done.stderr)


def test_shipped_config_loads_with_flow_control_and_the_documented_fallback_pace():
    settings = execd.load_settings(str(REPO / "telegraf" / "csv2lp.toml"))
    assert settings.spool.dir == Path("/var/spool/csv2lp")
    assert settings.spool.state_file == Path("/var/lib/csv2lp/state.json")
    assert settings.spool.done_dir == Path("/var/spool/csv2lp/done")
    assert settings.mapping_name == "preset movebank"
    assert settings.flow.url == "http://127.0.0.1:9274/metrics" and settings.flow.max_fill == 0.5
    assert settings.batch_lines == 5000
    assert settings.replay_lines is None  # the window flow control allows: all a kill of Telegraf can take
    assert settings.pace.describe() == "2,000 lines/s in batches of 1,000; rides out an output outage of 44 s"


@pytest.mark.parametrize("text, message", [
    ('[flow]\ntelegraf_metrics_url = "udp://127.0.0.1:9274"\n', r"\[flow\] telegraf_metrics_url = 'udp://"),
    ("[flow]\nmax_buffer_fill = 0.95\n", r"max_buffer_fill must be more than 0 and at most 0.9"),
    ("[flow]\noutputs = [1]\n", r"outputs must be a list of output names"),
    ("[flow]\nbatch_lines = 0\n", r"batch_lines must be >= 1"),
    ("[flow]\npoll_seconds = 0\n", r"poll_seconds must be > 0"),
    ("[flow]\nwindow = 3\n", r"unknown setting \[flow\] window; the settings there are telegraf_metrics_url"),
])
def test_flow_settings_are_checked_at_start(tmp_path, text, message):
    config = tmp_path / "csv2lp.toml"
    config.write_text('[spool]\ndir = "s"\n[convert]\npreset = "movebank"\n' + text)
    with pytest.raises(ConverterError, match=message):
        execd.load_settings(str(config))


def test_without_a_flow_url_the_batches_are_the_fixed_paces():
    settings = execd.load_settings(None, execd.SettingsOverrides(spool_dir="/tmp/x", preset="movebank"))
    assert settings.flow.url == "" and settings.batch_lines == settings.pace.batch_lines


def test_relative_paths_are_relative_to_the_config_file_and_flags_override(tmp_path):
    (tmp_path / "conf").mkdir()
    config = tmp_path / "conf" / "csv2lp.toml"
    config.write_text('[spool]\ndir = "../spool"\nstate_file = "state.json"\n[convert]\npreset = "movebank"\n')
    settings = execd.load_settings(str(config))
    assert settings.spool.dir == tmp_path / "conf" / ".." / "spool"
    assert settings.spool.state_file == tmp_path / "conf" / "state.json"
    assert settings.spool.rejects_dir == tmp_path / "conf" / ".." / "spool" / "rejects"
    mapping = tmp_path / "m.toml"
    mapping.write_text('measurement = "w"\n[tags]\nstation = "station"\n')
    flagged = execd.load_settings(str(config), execd.SettingsOverrides(
        spool_dir=str(tmp_path / "other"), mapping=str(mapping), precision="ms", s2_level=11))
    assert flagged.spool.dir == tmp_path / "other"
    assert flagged.mapping.measurement == "w" and flagged.mapping_name == f"mapping {mapping}"
    assert (flagged.options.precision.value, flagged.options.s2_level) == ("ms", 11)


@pytest.mark.parametrize("text, expected", [
    ("", 65_536), ("max_string_bytes = 100\n", 100), ("max_string_bytes = 0\n", None),
], ids=["default", "set", "0 lifts the limit"])
def test_max_string_bytes_is_a_convert_setting(tmp_path, text, expected):
    config = tmp_path / "csv2lp.toml"
    config.write_text(f'[spool]\ndir = "s"\n[convert]\npreset = "movebank"\n{text}')
    assert execd.load_settings(str(config)).options.max_string_bytes == expected


@pytest.mark.parametrize("text, message", [
    ("max_string_bytes = -1\n", r"\[convert\] max_string_bytes must be >= 0 \(0: no limit\)"),
    ('max_string_bytes = "64k"\n', r"\[convert\] max_string_bytes = '64k' has the wrong type"),
])
def test_a_bad_max_string_bytes_is_refused_at_start(tmp_path, text, message):
    config = tmp_path / "csv2lp.toml"
    config.write_text(f'[spool]\ndir = "s"\n[convert]\npreset = "movebank"\n{text}')
    with pytest.raises(ConverterError, match=message):
        execd.load_settings(str(config))


@pytest.mark.parametrize("limit, sent, rejected", [(40, 2, 1), (0, 3, 0)], ids=["40 bytes", "no limit"])
def test_max_string_bytes_from_the_config_rejects_longer_strings(tmp_path, children, limit, sent, rejected):
    """Regression: --max-string-bytes could not be set for execd; its files always had the 64 KB limit."""
    spool = tmp_path / "spool"
    header, first, second = SAMPLE.read_text().splitlines()[:3]
    cells = first.split(",")
    cells[0], cells[5] = "1", "x" * 41  # event-id, behavioural-classification (a string field)
    long_row = ",".join(cells)
    drop(spool, "\n".join([header, first, long_row, second]).encode() + b"\n", "long.csv")
    config = write_config(tmp_path, spool, lines_per_second=100_000, extra=f"max_string_bytes = {limit}\n")

    child = children("--config", str(config))
    child.wait_for_log(r"^I! long\.csv: done|^W! long\.csv: done", timeout=120)
    assert child.stop() == 0

    assert len(child.lines()) == sent
    assert (b"x" * 41 in b"".join(child.lines())) is (rejected == 0)
    rejects = spool / "rejects" / "long.csv.rejects.csv"
    assert (rejects.read_text().count("\n") - 1 if rejects.exists() else 0) == rejected
    if rejected:
        assert "string over 40 bytes in column 'behavioural-classification'" in rejects.read_text()


# --- the pieces that keep stdout and stderr safe --------------------------------------------


@pytest.mark.parametrize("lengths", [[10, 20, 30], [4096], [4097], [100] * 100, [3000, 3000, 5000, 10, 9000, 1]])
def test_writes_are_whole_lines_of_at_most_pipe_buf_bytes_unless_one_line_is_longer(lengths):
    ends = np.cumsum(lengths)
    chunks = protocol.line_aligned_chunks(ends, 4096)
    assert chunks[0][0] == 0 and chunks[-1][1] == ends[-1]
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))  # contiguous
    assert all(end in set(ends.tolist()) for _, end in chunks)  # cut at line ends only
    for start, end in chunks:
        assert end - start <= 4096 or end - start in lengths  # a long line goes alone
    # Greedy: no two neighbouring chunks would have fit into one write.
    assert all(b[1] - a[0] > 4096 for a, b in zip(chunks, chunks[1:]))


def test_log_lines_are_single_short_lines_with_the_level_prefix():
    read_fd, write_fd = os.pipe()
    log = protocol.Log(write_fd)
    log.error("first line\nsecond line\n\n" + "x" * 10_000)
    log.info("ok")
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        lines = pipe.read().decode().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("E! first line | second line | xxx") and lines[0].endswith(" [truncated]")
    assert len(lines[0]) <= protocol.LOG_LINE_LIMIT + 3
    assert lines[1] == "I! ok"


ANNOTATED = (b"#datatype measurement,tag,double,dateTime:RFC3339\nm,host,load,time\n"
             b"cpu,a,0.5,2020-01-01T00:00:00Z\ncpu,b,oops,2020-01-01T00:00:01Z\n\n"
             b"#datatype measurement,long,dateTime:number\nm,count,t\nmem,7,1577836802000000000\n")


def test_an_annotated_file_goes_to_error_saying_why(tmp_path, children):
    """execd always has a mapping (a preset or a mapping file), and an annotated file carries its own:
    refused, where before it was read as plain CSV (its annotation lines sent as rows)."""
    spool = tmp_path / "spool"
    drop(spool, ANNOTATED, "tables.csv")
    child = children("--config", str(write_config(tmp_path, spool)))
    error = child.wait_for_log(r"^E! .*$").group()
    assert child.stop() == 0
    assert "annotated CSV carries its own mapping" in error and child.lines() == []
    assert [p.name for p in (spool / "error").iterdir()] == ["tables.csv"]


def test_to_a_file_nothing_is_throttled_even_with_a_slow_pace(tmp_path):
    """Not under Telegraf (stdout a file, not a pipe): the fixed pace of 10 lines/s does not apply."""
    spool = tmp_path / "spool"
    drop(spool, SAMPLE, "fishers.csv")
    config = write_config(tmp_path, spool, lines_per_second=10)
    out = tmp_path / "out.lp"
    with open(out, "wb") as sink:
        process = subprocess.Popen([PYTHON, "-m", "converter", "execd", "--config", str(config)], cwd=REPO,
                                   stdin=subprocess.PIPE, stdout=sink, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while out.read_bytes().count(b"\n") < 1200:  # 2 minutes at 10 lines/s
            assert time.monotonic() < deadline and process.poll() is None, out.read_bytes().count(b"\n")
            time.sleep(0.05)
        process.stdin.close()
        assert process.wait(timeout=EXIT_TIMEOUT_S) == 0
    log = process.stderr.read().decode()
    assert "I! stdout is not a pipe (a file or a terminal, not Telegraf): lines are not throttled\n" in log


def test_a_file_renamed_into_the_spool_is_taken_at_once_not_after_settling(tmp_path, children):
    spool = tmp_path / "spool"
    spool.mkdir()
    child = children("--config", str(write_config(tmp_path, spool, poll_seconds=60)))
    child.wait_for_log(r"^I! csv2lp execd .*: watching")
    hidden = spool / ".fresh.csv.part"
    shutil.copyfile(SAMPLE, hidden)  # modified just now: the settle rule alone would wait 60 s
    hidden.rename(spool / "fresh.csv")
    child.wait_for_log(r"^I! fresh\.csv: done", timeout=20)
    assert child.stop() == 0


def test_kill_9_while_lines_longer_than_pipe_buf_wait_for_the_pipe_leaves_no_half_line(tmp_path):
    """Lines over 4 KiB (string fields may be 64 KiB) are not atomic on a pipe; each is written only
    once the pipe has room for all of it. The reader here is slow, so the child keeps a long line
    waiting; a SIGKILL at any of several moments must leave only whole lines in the pipe (before the
    fix the pipe held the first part of a line, which Telegraf parses as a wrong point)."""
    spool = tmp_path / "spool"
    header, *rows = SAMPLE.read_text().splitlines()[:201]
    long_rows = []
    for n, row in enumerate(rows):
        cells = row.split(",")
        cells[5] = "x" * (5_000 + 997 * n % 40_000)  # behavioural-classification: a string field
        long_rows.append(",".join(cells))
    drop(spool, ("\n".join([header, *long_rows]) + "\n").encode(), "long.csv")
    config = write_config(tmp_path, spool, lines_per_second=0)
    whole_lines = 0
    for delay in (0.3, 0.55, 0.8, 1.1, 1.4):
        process = subprocess.Popen([PYTHON, "-m", "converter", "execd", "--config", str(config)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
        try:
            began, out = time.monotonic(), bytearray()
            while time.monotonic() - began < delay:  # a slow reader: the pipe stays nearly full
                out += os.read(process.stdout.fileno(), 3_000)
                time.sleep(0.01)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=EXIT_TIMEOUT_S)
            out += process.stdout.read()  # what the kill left in the pipe
        finally:
            process.kill()
            process.wait()
        assert out, f"nothing written in {delay} s"
        assert out.endswith(b"\n"), f"a half line after a kill at {delay} s: ...{bytes(out[-80:])!r}"
        lines = out.splitlines()
        assert all(line.startswith(b"movebank,") for line in lines)
        assert max(len(line) for line in lines) > 4096
        whole_lines += len(lines)
    assert whole_lines > 0
