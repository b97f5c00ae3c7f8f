"""Hostile invocations of the whole CLI, as a user's shell makes them: never a traceback.

Every case runs `python -m converter` as a child process (PYTHONPATH is this tree), with
real FIFOs, real process substitution (`bash -c '... <(cat f)'`), real /dev/full, a real
pty whose other end is gone (EIO), a real full file system (a 64 KiB tmpfs, where the
machine lets us mount one) and a real closed pipe. Each asserts the exit status and the
exact message (or its stable part, where the system's words or a pipe's buffer size
enter it), that no input file changed (SHA-256 before and after), and `run()` fails any
case whose stderr holds a Python traceback.

Sections follow issue 16: inputs read exactly once (FIFOs, /dev/fd/N, gzip through both);
outputs that are inputs or each other; folders checked before the first row; write
errors during the run; settings that can never work; and the rest of the matrix
(missing, empty, binary, unreadable, duplicate inputs; inspect and execd with bad paths).

Running as root: root writes and reads past mode bits, so the cases about a read-only
folder or an unreadable file run the child without that power (setpriv drops
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH); /proc covers "cannot create a file here" for
root and everyone.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
TIMEOUT = 120  # seconds any child or FIFO writer may take; far above what each needs

SMALL = "station,n,time\na,1,2020-01-01T00:00:00Z\nb,2,2020-01-01T00:00:01Z\n"
SMALL_ARGS = ("-t", "station", "--precision", "s")
SMALL_LINES = "w,station=a n=1 1577836800\nw,station=b n=2 1577836801\n"
WITH_REJECT = SMALL + "c,warm,2020-01-01T00:00:02Z\n"
TYPED = ("--type", "n=float")
BIG_ROWS = 200_000
RATE = re.compile(r" in \d+\.\d\d s \([\d,]+ rows/s\)")
QUARANTINE_FIX = "give --rejects FILE in another place, or --on-error skip to only count bad rows"


@dataclass
class Run:
    status: int
    stdout: bytes
    stderr: str

    @property
    def messages(self) -> list[str]:
        """stderr's lines without the run's rate (`in 0.03 s (66 rows/s)`), which depends on the machine."""
        return [RATE.sub("", line) for line in self.stderr.splitlines()]


def _checked(status: int, stdout: bytes | None, stderr: bytes) -> Run:
    text = stderr.decode("utf-8", errors="replace")
    assert "Traceback" not in text, text
    assert "terminate called" not in text and "Fatal Python error" not in text, text
    return Run(status, stdout or b"", text)


def run(*args: str, cwd: Path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, prefix: tuple[str, ...] = (),
        timeout: float = TIMEOUT) -> Run:
    """`csv2lp ARGS...` as a child process."""
    child = subprocess.run([*prefix, sys.executable, "-m", "converter", *args], cwd=cwd, env=ENV, stdin=stdin,
                           stdout=stdout, stderr=subprocess.PIPE, timeout=timeout)
    return _checked(child.returncode, child.stdout, child.stderr)


def in_bash(script: str, *, cwd: Path) -> Run:
    """A bash command line, where `csv2lp` is this tree's CLI (for `<(...)`, `>>`, pipes)."""
    csv2lp = f"{shlex.quote(sys.executable)} -m converter"
    child = subprocess.run(["bash", "-c", script.replace("csv2lp", csv2lp)], cwd=cwd, env=ENV,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)
    return _checked(child.returncode, child.stdout, child.stderr)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def inputs(tmp_path: Path):
    """Write input files into tmp_path; after the test, every one must be byte for byte as written."""
    written: dict[Path, str] = {}

    def put(name: str, data: str | bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        written[path] = sha256(path)
        return path

    yield put
    for path, digest in written.items():
        assert sha256(path) == digest, f"{path.name} was changed by the run"


BIG_ARGS = ("-m", "big", "-t", "station", "--time-format", "epoch_s", "--precision", "s")


def big_lines_of(rows: int) -> str:
    """The first `rows` lines csv2lp makes of `big_csv` with BIG_ARGS (n is inferred as a float)."""
    return "".join(f"big,station=s{i % 7} n={i} {1_600_000_000 + i}\n" for i in range(rows))


def big_csv(rows: int = BIG_ROWS) -> tuple[str, str]:
    """A CSV of `rows` rows, each with its own time, and the lines csv2lp makes of it."""
    return "station,n,time\n" + "".join(f"s{i % 7},{i},{1_600_000_000 + i}\n" for i in range(rows)), big_lines_of(rows)


class FifoWriter(threading.Thread):
    """Writes `data` into the FIFO at `path` once a reader has opened it; gives up after TIMEOUT.

    Opening with O_NONBLOCK fails (ENXIO) while no reader is there, so the thread never
    blocks for ever in open(); a reader that goes away early ends it with EPIPE (`broken`)."""

    def __init__(self, path: Path, data: bytes) -> None:
        super().__init__(daemon=True)
        self.path, self.data = path, data
        self.opened = 0  # how often a reader opened the FIFO and the writer got in
        self.broken = False
        os.mkfifo(path)

    def run(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                time.sleep(0.005)
                continue
            self.opened += 1
            os.set_blocking(fd, True)
            try:
                view = memoryview(self.data)
                while view:
                    view = view[os.write(fd, view):]
            except BrokenPipeError:
                self.broken = True
            finally:
                os.close(fd)
            return

    def __enter__(self) -> "FifoWriter":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.join(TIMEOUT)
        assert not self.is_alive(), "the FIFO writer never finished: nobody read the FIFO"


def root_without_override() -> tuple[str, ...]:
    """A prefix under which mode bits bind the child: root would read and write past them."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: mode bits do not bind root (the /proc cases cover "
                    "a folder that cannot take a file)")
    caps = "-dac_override,-dac_read_search"
    return (setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}")


# ============================================================ 1. every input read exactly once


def test_process_substitution_is_read_once_and_needs_a_measurement_name(tmp_path: Path, inputs) -> None:
    inputs("small.csv", SMALL)

    result = in_bash("csv2lp <(cat small.csv) -t station --precision s", cwd=tmp_path)

    # Its name says nothing (/dev/fd/63): the header check must not read it, the error must say what to do.
    assert result.status == 1
    assert re.fullmatch(r"csv2lp: error: /dev/fd/\d+: the measurement cannot be named after this input: it is an "
                        r"open file descriptor \(a process substitution such as <\(zcat x\.csv\.gz\)\), not a file "
                        r"name; give -m NAME or --measurement-column COLUMN\.\n", result.stderr)


def test_process_substitution_small(tmp_path: Path, inputs) -> None:
    inputs("small.csv", SMALL)

    result = in_bash("csv2lp <(cat small.csv) -m w -t station --precision s", cwd=tmp_path)

    assert (result.status, result.stdout.decode()) == (0, SMALL_LINES)
    assert result.messages == ["2 rows read from 1 file", "2 lines written", "0 rows rejected"]


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip by its magic bytes"])
def test_process_substitution_large_every_row_once(tmp_path: Path, inputs, compressed: bool) -> None:
    text, lines = big_csv()
    inputs("big.csv.gz" if compressed else "big.csv", gzip.compress(text.encode(), 1) if compressed else text)
    source = "big.csv.gz" if compressed else "big.csv"

    result = in_bash(f"csv2lp <(cat {source}) {' '.join(BIG_ARGS)}", cwd=tmp_path)

    assert result.status == 0, result.stderr
    assert result.stdout.decode() == lines
    assert result.messages == ["200,000 rows read from 1 file", "200,000 lines written", "0 rows rejected"]


def test_fifo_small_is_read_once_and_named_after_the_fifo(tmp_path: Path, inputs) -> None:
    with FifoWriter(tmp_path / "gps.csv", SMALL.encode()) as writer:
        result = run("gps.csv", *SMALL_ARGS, cwd=tmp_path)

    assert (result.status, result.stdout.decode()) == (0, SMALL_LINES.replace("w,", "gps,"))
    assert result.messages == ["2 rows read from 1 file", "2 lines written", "0 rows rejected"]
    assert (writer.opened, writer.broken) == (1, False)


@pytest.mark.parametrize("name, compress", [("big.csv", False), ("big.csv.gz", True), ("bigpipe", True)],
                         ids=["plain", "gzip by name", "gzip by magic bytes"])
def test_fifo_large_every_row_once(tmp_path: Path, name: str, compress: bool) -> None:
    text, lines = big_csv()
    data = gzip.compress(text.encode(), 1) if compress else text.encode()

    with FifoWriter(tmp_path / name, data) as writer:
        result = run(name, *BIG_ARGS, cwd=tmp_path)

    assert result.status == 0, result.stderr
    assert result.stdout.decode() == lines
    assert result.messages == ["200,000 rows read from 1 file", "200,000 lines written", "0 rows rejected"]
    assert (writer.opened, writer.broken) == (1, False)


def test_fifo_after_a_file_each_read_once(tmp_path: Path, inputs) -> None:
    inputs("first.csv", SMALL)

    with FifoWriter(tmp_path / "second.csv", SMALL.encode()):
        result = run("first.csv", "second.csv", *SMALL_ARGS, cwd=tmp_path)

    assert result.status == 0
    assert result.stdout.decode() == SMALL_LINES.replace("w,", "first,") + SMALL_LINES.replace("w,", "second,")
    assert result.messages == ["4 rows read from 2 files", "4 lines written", "0 rows rejected"]


def test_fifo_whose_header_does_not_fit_the_mapping_ends_without_hanging(tmp_path: Path) -> None:
    with FifoWriter(tmp_path / "gps.csv", SMALL.encode()):
        result = run("gps.csv", "-t", "place", cwd=tmp_path)

    assert result.status == 1
    assert result.stderr == ("csv2lp: error: gps.csv: column 'place' (tag) is not in the header. "
                             "Columns: 'station', 'n', 'time'.\n")


def test_inspect_reads_a_process_substitution_once(tmp_path: Path, inputs) -> None:
    inputs("small.csv", SMALL)

    result = in_bash("csv2lp inspect <(cat small.csv) -m w -t station", cwd=tmp_path)

    assert result.status == 0, result.stderr
    assert "rows: 2 read, 2 would be written, 0 rejected" in result.stdout.decode().splitlines()


# ============================================================ 2. an output that is an input, or another output


@pytest.mark.parametrize(
    "args, message",
    [
        (("x.csv", "-o", "x.csv"), "-o x.csv is the input: writing it would destroy the input; give another path."),
        (("x.csv", "-o", "./x.csv"),
         "-o ./x.csv is the input x.csv: writing it would destroy the input; give another path."),
        (("x.csv", "-o", "sub/../x.csv"),
         "-o sub/../x.csv is the input x.csv: writing it would destroy the input; give another path."),
        (("x.csv", "-o", "link.lp"),
         "-o link.lp is the input x.csv: writing it would destroy the input; give another path."),
        (("x.csv", "-o", "hard.lp"),
         "-o hard.lp is the input x.csv: writing it would destroy the input; give another path."),
        (("x.csv", "--rejects", "x.csv"), f"--rejects x.csv is the input: writing it would destroy the input; "
                                          f"{QUARANTINE_FIX}."),
        (("csv2lp-rejects.csv",),  # converting last run's rejects again: the default rejects path is the input
         f"--rejects csv2lp-rejects.csv is the input: writing it would destroy the input; {QUARANTINE_FIX}."),
        (("x.csv", "--summary-json", "x.csv"),
         "--summary-json x.csv is the input: writing it would destroy the input; give another path."),
        (("x.csv", "--rejects", "o.lp", "-o", "o.lp"),
         "--rejects o.lp is the same file as -o o.lp: one file cannot hold both; give each its own path."),
        (("x.csv", "--rejects", "new.csv", "-o", "./new.csv"),
         "--rejects new.csv is the same file as -o ./new.csv: one file cannot hold both; give each its own path."),
        (("x.csv", "--summary-json", "o.lp", "-o", "o.lp"),
         "--summary-json o.lp is the same file as -o o.lp: one file cannot hold both; give each its own path."),
        (("x.csv", "--summary-json", "r.csv", "--rejects", "r.csv"),
         "--rejects r.csv is the same file as --summary-json r.csv: one file cannot hold both; "
         "give each its own path."),
    ],
    ids=["-o input", "./ spelling", ".. spelling", "symlink", "hard link", "--rejects input", "default rejects input",
         "--summary-json input", "--rejects is -o", "-o not there yet", "--summary-json is -o",
         "--summary-json is --rejects"],
)
def test_an_output_that_is_an_input_or_another_output_is_refused_before_anything_is_written(
        tmp_path: Path, inputs, args: tuple[str, ...], message: str) -> None:
    inputs("x.csv", WITH_REJECT)
    inputs("csv2lp-rejects.csv", WITH_REJECT)
    inputs("o.lp", "lines of an earlier run\n")  # an existing output: not truncated either
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.lp").symlink_to("x.csv")
    os.link(tmp_path / "x.csv", tmp_path / "hard.lp")
    before = sorted(p.name for p in tmp_path.iterdir())

    result = run(*args, *TYPED, cwd=tmp_path)

    assert (result.status, result.stdout) == (1, b"")
    assert result.stderr == f"csv2lp: error: {message}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created (no probe left behind either)


def test_absolute_and_relative_spellings_of_the_input(tmp_path: Path, inputs) -> None:
    inputs("x.csv", SMALL)

    result = run("x.csv", "-o", str(tmp_path / "x.csv"), cwd=tmp_path)

    assert result.status == 1
    assert result.stderr == (f"csv2lp: error: -o {tmp_path}/x.csv is the input x.csv: writing it would destroy "
                             f"the input; give another path.\n")


@pytest.mark.parametrize("redirect", [">>", ">"])
def test_stdout_redirected_into_the_input_is_refused(tmp_path: Path, redirect: str) -> None:
    (tmp_path / "x.csv").write_text(SMALL)

    result = in_bash(f"csv2lp x.csv {' '.join(SMALL_ARGS)} {redirect} x.csv", cwd=tmp_path)

    assert result.status == 1
    assert result.stderr == ("csv2lp: error: stdout is the input x.csv (redirected with > or >>): the shell opened it "
                             "for writing before csv2lp started, so it is emptied or would be read back; write the "
                             "lines to another file (-o FILE).\n")
    # `>>` must not have grown the file with its own lines; `>` emptied it before csv2lp ran (nothing to save).
    assert (tmp_path / "x.csv").read_text() == (SMALL if redirect == ">>" else "")


IS_STDOUT = ("is where stdout goes (a > or >> redirect, a pipe, /dev/stdout), and the lines go there: one file "
             "cannot hold both; give each its own path (-o FILE for the lines).")


@pytest.mark.parametrize(
    "command, refused",
    [
        ("csv2lp x.csv -m w {typed} --rejects o.lp > o.lp", "--rejects o.lp"),
        ("csv2lp x.csv -m w {typed} --rejects o.lp >> o.lp", "--rejects o.lp"),
        ("csv2lp x.csv -m w {typed} --rejects ./sub/../o.lp > o.lp", "--rejects ./sub/../o.lp"),
        ("csv2lp x.csv -m w {typed} --rejects /dev/stdout > o.lp", "--rejects /dev/stdout"),
        ("csv2lp x.csv -m w {typed} -o - --rejects /dev/stdout > o.lp", "--rejects /dev/stdout"),
        ("csv2lp x.csv -m w {typed} --summary-json o.lp > o.lp", "--summary-json o.lp"),
        ("csv2lp x.csv -m w {typed} --summary-json /dev/stdout > o.lp", "--summary-json /dev/stdout"),
        ("set -o pipefail; csv2lp x.csv -m w {typed} --rejects /dev/stdout | cat > o.lp", "--rejects /dev/stdout"),
    ],
    ids=["rejects >", "rejects >>", "rejects other spelling", "rejects /dev/stdout", "-o - and /dev/stdout",
         "summary-json >", "summary-json /dev/stdout", "rejects into the pipe"],
)
def test_an_output_that_is_stdout_carrying_the_lines_is_refused(tmp_path: Path, command: str, refused: str) -> None:
    """Regression: `--rejects o.lp > o.lp` exited 3 saying "2 lines written", and o.lp held only the rejects."""
    (tmp_path / "x.csv").write_text(WITH_REJECT)
    (tmp_path / "o.lp").write_text("lines of an earlier run\n")
    (tmp_path / "sub").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())

    result = in_bash(command.format(typed=" ".join(TYPED)), cwd=tmp_path)

    assert result.status == 1
    assert result.stderr == f"csv2lp: error: {refused} {IS_STDOUT}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no rejects file, no probe
    # `>` emptied o.lp before csv2lp ran; `>>` kept it; csv2lp wrote nothing into it either way.
    assert (tmp_path / "o.lp").read_text() == ("lines of an earlier run\n" if ">>" in command else "")


@pytest.mark.parametrize(
    "command",
    ["csv2lp x.csv -m w {typed} --rejects /dev/stdout -o o.lp > shown.txt",  # stdout carries no lines here
     "csv2lp x.csv -m w {typed} --summary-json /dev/stdout -o o.lp > shown.txt",
     "csv2lp x.csv -m w {typed} --rejects /dev/null --summary-json /dev/null > /dev/null"],
    ids=["rejects to stdout, lines to -o", "summary to stdout, lines to -o", "all to /dev/null"],
)
def test_stdout_that_carries_no_lines_or_is_a_device_may_take_another_output(tmp_path: Path, command: str) -> None:
    (tmp_path / "x.csv").write_text(WITH_REJECT)

    result = in_bash(command.format(typed=" ".join(TYPED)), cwd=tmp_path)

    assert result.status == 3, result.stderr  # 3: rows were rejected, everything else written
    if "-o o.lp" in command:
        assert (tmp_path / "o.lp").read_text() == 'w station="a",n=1 1577836800000000000\nw station="b",n=2 1577836801000000000\n'
        shown = (tmp_path / "shown.txt").read_text()
        assert ("c,warm" in shown) if "--rejects" in command else ('"rows_rejected": 1' in shown)


def test_a_second_rejects_file_that_is_an_input_is_refused_when_it_is_needed(tmp_path: Path, inputs) -> None:
    # Two headers make two rejects files: r.csv, then r.2.csv, which here is an input.
    inputs("a.csv", WITH_REJECT)
    inputs("r.2.csv", "station,n,extra,time\nq,warm,1,2020-01-01T00:00:00Z\n")

    result = run("a.csv", "r.2.csv", "--rejects", "r.csv", "-m", "w", *TYPED, cwd=tmp_path)

    assert result.status == 1
    assert result.messages[0] == ("csv2lp: error: --rejects r.2.csv is the input: writing it would destroy the "
                                  "input; give another path.")


# ============================================================ 2/3. folders checked before the first row


@pytest.mark.parametrize(
    "args, message",
    [
        (("--rejects", "missing/r.csv"),
         f"--rejects missing/r.csv: the folder missing does not exist; create it, or {QUARANTINE_FIX}."),
        (("-o", "missing/o.lp"), "-o missing/o.lp: the folder missing does not exist; create it, or give another path."),
        (("--summary-json", "missing/s.json"),
         "--summary-json missing/s.json: the folder missing does not exist; create it, or give another path."),
        (("-o", "x.csv/o.lp"), "-o x.csv/o.lp: x.csv is not a folder; give another path."),
        (("-o", "out"), "-o out is a folder; give a file name (e.g. out/out)."),
    ],
    ids=["--rejects", "-o", "--summary-json", "folder is a file", "-o is a folder"],
)
def test_a_missing_folder_is_refused_before_the_first_row(tmp_path: Path, inputs, args: tuple[str, ...],
                                                          message: str) -> None:
    inputs("x.csv", WITH_REJECT)
    (tmp_path / "out").mkdir()

    result = run("x.csv", *TYPED, *args, cwd=tmp_path)

    assert (result.status, result.stdout) == (1, b"")
    assert result.stderr == f"csv2lp: error: {message}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "x.csv"]  # no default rejects file either


@pytest.mark.parametrize("option", ["--rejects", "-o", "--summary-json"])
def test_a_folder_in_proc_cannot_take_a_file_whoever_runs(tmp_path: Path, inputs, option: str) -> None:
    inputs("x.csv", WITH_REJECT)

    result = run("x.csv", *TYPED, option, "/proc/csv2lp-test.out", cwd=tmp_path)

    fix = QUARANTINE_FIX if option == "--rejects" else "give another path"
    assert (result.status, result.stdout) == (1, b"")
    # The system's words differ by user (root: ENOENT, others: EACCES): the rest is fixed.
    assert re.fullmatch(rf"csv2lp: error: {option} /proc/csv2lp-test\.out: cannot create a file in /proc: "
                        rf"[^;]+ \((ENOENT|EACCES)\); {re.escape(fix)}\.\n", result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


@pytest.mark.parametrize("option", ["--rejects", "-o", "--summary-json", None],
                         ids=["--rejects", "-o", "--summary-json", "default rejects in the working folder"])
def test_a_read_only_folder_is_refused_before_the_first_row(tmp_path: Path, inputs, option: str | None) -> None:
    prefix = root_without_override()
    inputs("x.csv", WITH_REJECT)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if option is None:  # the default rejects path, in a working folder the run cannot write
            result = run(str(tmp_path / "x.csv"), *TYPED, "-o", str(tmp_path / "o.lp"), cwd=locked, prefix=prefix)
        else:
            result = run("x.csv", *TYPED, option, "locked/out.file", cwd=tmp_path, prefix=prefix)
    finally:
        locked.chmod(0o755)

    assert (result.status, result.stdout) == (1, b"")
    if option is None:
        expected = (f"--rejects csv2lp-rejects.csv: cannot create a file in the working folder {locked}: "
                    f"Permission denied (EACCES); {QUARANTINE_FIX}.")
    else:
        fix = QUARANTINE_FIX if option == "--rejects" else "give another path"
        expected = f"{option} locked/out.file: cannot create a file in locked: Permission denied (EACCES); {fix}."
    assert result.stderr == f"csv2lp: error: {expected}\n"
    assert list(locked.iterdir()) == [] and not (tmp_path / "o.lp").exists()


def test_a_read_only_output_file_is_refused_and_kept(tmp_path: Path, inputs) -> None:
    prefix = root_without_override()
    inputs("x.csv", SMALL)
    kept = inputs("o.lp", "an earlier run's lines\n")
    kept.chmod(0o444)

    result = run("x.csv", "-o", "o.lp", cwd=tmp_path, prefix=prefix)

    assert result.status == 1
    assert result.stderr == "csv2lp: error: -o o.lp: cannot write it: Permission denied (EACCES); give another path.\n"


# ============================================================ 3. write errors during the run


def test_output_on_a_full_device_says_what_failed_and_what_was_written(tmp_path: Path, inputs) -> None:
    inputs("x.csv", WITH_REJECT)

    result = run("x.csv", "-m", "w", *SMALL_ARGS, *TYPED, "-o", "/dev/full", "--summary-json", "s.json", cwd=tmp_path)

    assert result.status == 1
    assert result.messages == [
        "csv2lp: error: -o /dev/full: cannot write: No space left on device (ENOSPC)",
        "3 rows read from 1 file",
        "0 lines written",
        "2 lines not written: the output failed (see the error above)",
        "1 row rejected",
        "  1 × invalid float in column 'n'",
        "rejected rows saved to csv2lp-rejects.csv",
    ]
    # The rejected row is not lost with the output, and the books balance.
    assert (tmp_path / "csv2lp-rejects.csv").read_text().splitlines()[1].startswith("x.csv,4,invalid float")
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["rows_read"], summary["lines_written"], summary["lines_not_written"],
            summary["rows_rejected"]) == (3, 0, 2, 1)


def test_stdout_on_a_full_device(tmp_path: Path, inputs) -> None:
    inputs("x.csv", SMALL)

    with open("/dev/full", "wb") as full:
        result = run("x.csv", *SMALL_ARGS, cwd=tmp_path, stdout=full)

    assert result.status == 1
    assert result.messages == ["csv2lp: error: stdout: cannot write: No space left on device (ENOSPC)",
                               "2 rows read from 1 file", "0 lines written",
                               "2 lines not written: the output failed (see the error above)", "0 rows rejected"]


def test_a_gz_output_on_a_full_device_says_it_is_cut(tmp_path: Path, inputs) -> None:
    inputs("x.csv", SMALL)
    (tmp_path / "full.lp.gz").symlink_to("/dev/full")

    result = run("x.csv", *SMALL_ARGS, "-o", "full.lp.gz", cwd=tmp_path)

    assert result.status == 1
    assert result.messages[0] == ("csv2lp: error: -o full.lp.gz: cannot write: No space left on device (ENOSPC); "
                                  "the .gz file is cut, not a complete gzip stream")
    assert "no such" not in result.stderr.lower()


def test_rejects_file_on_a_full_device_counts_the_rows_it_lost(tmp_path: Path, inputs) -> None:
    inputs("x.csv", WITH_REJECT)

    result = run("x.csv", "-m", "w", *SMALL_ARGS, *TYPED, "--rejects", "/dev/full", cwd=tmp_path)

    assert result.status == 1
    assert result.messages == [
        "csv2lp: error: rejects file /dev/full: cannot write: No space left on device (ENOSPC).",
        "3 rows read from 1 file", "2 lines written", "1 row rejected", "  1 × invalid float in column 'n'",
        "1 rejected row could not be saved to /dev/full: writing it failed (see the error above)",
    ]
    assert result.stdout.decode() == SMALL_LINES


def test_summary_json_on_a_full_device(tmp_path: Path, inputs) -> None:
    inputs("x.csv", SMALL)

    result = run("x.csv", *SMALL_ARGS, "--summary-json", "/dev/full", cwd=tmp_path)

    assert result.status == 1
    assert result.messages[-1] == "csv2lp: error: --summary-json /dev/full: cannot write: No space left on device (ENOSPC)."
    assert result.stdout.decode() == SMALL_LINES.replace("w,", "x,")


def test_stdout_whose_terminal_is_gone_is_an_io_error(tmp_path: Path, inputs) -> None:
    inputs("x.csv", SMALL)
    master, slave = os.openpty()
    os.close(master)  # the terminal window closed: writes to its other end fail with EIO
    try:
        result = run("x.csv", *SMALL_ARGS, cwd=tmp_path, stdout=slave)
    finally:
        os.close(slave)

    assert result.status == 1
    assert result.messages[0] == "csv2lp: error: stdout: cannot write: Input/output error (EIO)"
    assert result.messages[1:4] == ["2 rows read from 1 file", "0 lines written",
                                    "2 lines not written: the output failed (see the error above)"]


def test_a_disk_that_fills_up_mid_run_counts_exactly_the_lines_in_the_file(tmp_path: Path) -> None:
    """A 64 KiB tmpfs fills up after some thousand lines: the summary's count must be the file's."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a small tmpfs in a private mount namespace")
    text, _ = big_csv(50_000)
    (tmp_path / "big.csv").write_text(text)
    disk = tmp_path / "disk"
    disk.mkdir()
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {disk}"],
                           capture_output=True, timeout=TIMEOUT)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.decode().strip()}")
    csv2lp = f"{shlex.quote(sys.executable)} -m converter big.csv {' '.join(BIG_ARGS)}"
    script = (f"mount -t tmpfs -o size=64k tmpfs disk && {csv2lp} -o disk/out.lp --summary-json s.json; "
              f"status=$?; cp disk/out.lp kept.lp; exit $status")
    child = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=tmp_path, env=ENV, capture_output=True,
                           timeout=TIMEOUT)
    result = _checked(child.returncode, child.stdout, child.stderr)

    kept = (tmp_path / "kept.lp").read_bytes()
    summary = json.loads((tmp_path / "s.json").read_text())
    assert result.status == 1
    assert result.messages[0] == "csv2lp: error: -o disk/out.lp: cannot write: No space left on device (ENOSPC)"
    assert 0 < summary["lines_written"] == kept.count(b"\n")  # lines really handed to the system
    assert kept[: kept.rindex(b"\n") + 1].decode() == big_lines_of(summary["lines_written"])
    assert summary["rows_read"] == summary["lines_written"] + summary["lines_not_written"]
    assert result.messages[2] == f"{summary['lines_written']:,} lines written"


def test_a_reader_closing_the_pipe_gets_one_line_without_a_traceback(tmp_path: Path) -> None:
    text, _ = big_csv()
    (tmp_path / "big.csv").write_text(text)

    result = in_bash(f"set -o pipefail; csv2lp big.csv {' '.join(BIG_ARGS)} | head -1", cwd=tmp_path)

    assert result.stdout == b"big,station=s0 n=0 1600000000\n"
    assert result.status == 1  # csv2lp's, through pipefail: the rest was not converted
    assert re.fullmatch(r"csv2lp: stdout was closed by its reader after [\d,]+ lines; stopped "
                        r"\(the rest of the input was not converted\)\.\n", result.stderr)


def test_a_fifo_output_whose_reader_leaves(tmp_path: Path, inputs) -> None:
    text, _ = big_csv()
    inputs("big.csv", text)
    os.mkfifo(tmp_path / "out.fifo")
    child = subprocess.Popen([sys.executable, "-m", "converter", "big.csv", *BIG_ARGS, "-o", "out.fifo"],
                             cwd=tmp_path, env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    with open(tmp_path / "out.fifo", "rb") as fifo:
        first = fifo.readline()
    stderr = child.communicate(timeout=TIMEOUT)[1]
    result = _checked(child.returncode, b"", stderr)

    assert first == b"big,station=s0 n=0 1600000000\n"
    assert result.status == 1
    assert re.fullmatch(r"csv2lp: -o out\.fifo was closed by its reader after [\d,]+ lines; stopped "
                        r"\(the rest of the input was not converted\)\.\n", result.stderr)


# ============================================================ 5. settings that can never work


@pytest.mark.parametrize(
    "args, message",
    [
        (("--timezone", "Mars/Olympus"),
         "Invalid value for '--timezone': 'Mars/Olympus' is not a time zone in Arrow's time zone database; use an "
         "IANA name such as Europe/Berlin or America/New_York, an offset such as +02:00, or UTC."),
        (("--time-format", "%Q%"),
         "Invalid value for '--time-format': '%Q%' can never read a time: 2001-02-03 04:05:06 UTC written with it "
         "is '14706%', which it does not read back (a directive Arrow's strptime does not have, such as %f or %s?); "
         "use one of iso8601, rfc3339, movebank, epoch_s, epoch_ms, epoch_us, epoch_ns or a strptime pattern such "
         "as '%d/%m/%Y %H:%M:%S'."),
        (("--time-format", "%Y-%m-%d %H:%M:%S.%f"),
         "Invalid value for '--time-format': '%Y-%m-%d %H:%M:%S.%f' can never read a time: 2001-02-03 04:05:06 UTC "
         "written with it is '2001-02-03 04:05:06.%f', which it does not read back (a directive Arrow's strptime "
         "does not have, such as %f or %s?); use one of iso8601, rfc3339, movebank, epoch_s, epoch_ms, epoch_us, "
         "epoch_ns or a strptime pattern such as '%d/%m/%Y %H:%M:%S'."),
    ],
    ids=["unknown zone", "impossible pattern", "python's %f"],
)
def test_a_setting_that_can_never_work_is_a_usage_error(tmp_path: Path, inputs, args: tuple[str, ...],
                                                        message: str) -> None:
    inputs("x.csv", SMALL)

    result = run("x.csv", *args, cwd=tmp_path)

    assert (result.status, result.stdout) == (2, b"")
    assert result.stderr.splitlines()[-1] == f"Error: {message}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


@pytest.mark.parametrize("args", [("--timezone", "Europe/Berlin"), ("--timezone", "+02:00"), ("--timezone", "utc"),
                                  ("--time-format", "%Y-%m-%dT%H:%M:%SZ")])
def test_settings_that_work_are_taken(tmp_path: Path, inputs, args: tuple[str, ...]) -> None:
    inputs("x.csv", SMALL)

    result = run("x.csv", *SMALL_ARGS, *args, cwd=tmp_path)

    assert (result.status, result.stdout.decode()) == (0, SMALL_LINES.replace("w,", "x,"))


@pytest.mark.parametrize(
    "toml, message",
    [
        ('[time]\ntimezone = "Mars/Olympus"\n',
         "m.toml: [time] timezone = 'Mars/Olympus' is not a time zone in Arrow's time zone database; use an IANA "
         "name such as Europe/Berlin or America/New_York, an offset such as +02:00, or UTC."),
        ('[time]\nformat = "%Q%"\n', "m.toml: [time] format = '%Q%' can never read a time: 2001-02-03 04:05:06 UTC "
                                    "written with it is '14706%', which it does not read back"),
        ("[time]\nformat = 5\n", "m.toml: [time] format = 5 must be a string."),
        ("[time]\nzone = \"UTC\"\n", "m.toml: unknown key [time] zone; known keys: column, format, timezone."),
        ("tags = 5\n", "m.toml: tags = 5 must be a table."),
        ('exclude = "notes"\n', "m.toml: exclude = 'notes' must be a list of column names."),
    ],
    ids=["zone", "pattern", "format not a string", "unknown time key", "tags not a table", "exclude not a list"],
)
def test_a_mapping_file_that_can_never_work_names_the_file_and_key(tmp_path: Path, inputs, toml: str,
                                                                   message: str) -> None:
    inputs("x.csv", SMALL)
    inputs("m.toml", toml)

    result = run("x.csv", "--config", "m.toml", cwd=tmp_path)

    assert (result.status, result.stdout) == (1, b"")
    assert result.stderr.startswith(f"csv2lp: error: {message}")
    assert len(result.stderr.splitlines()) == 1


def test_execd_with_a_mapping_that_can_never_work_stops_at_start(tmp_path: Path, inputs) -> None:
    inputs("m.toml", '[time]\ntimezone = "Mars/Olympus"\n')
    inputs("csv2lp.toml", '[spool]\ndir = "spool"\n[convert]\nmapping = "m.toml"\n')

    result = run("execd", "--config", "csv2lp.toml", cwd=tmp_path)

    assert result.status == 1
    assert result.stderr == (f"E! csv2lp execd: csv2lp.toml: [convert] {tmp_path}/m.toml: [time] timezone = "
                             f"'Mars/Olympus' is not a time zone in Arrow's time zone database; use an IANA name such "
                             f"as Europe/Berlin or America/New_York, an offset such as +02:00, or UTC.\n")
    assert not (tmp_path / "spool").exists()


# ============================================================ the rest of the matrix: inputs


@pytest.mark.parametrize(
    "setup, args, status, message",
    [
        (None, ("missing.csv",), 1, "csv2lp: error: missing.csv: no such file."),
        ("dir", ("data",), 1, "csv2lp: error: data: is a directory; give the files in it (for example data/*.csv)."),
        ("empty", ("empty.csv",), 1,
         "csv2lp: error: empty.csv: the file is empty; a CSV file with a header line is expected."),
        ("binary", ("garbage.csv",), 1,
         "csv2lp: error: garbage.csv: the header line holds NUL bytes: this is not UTF-8 CSV text (a binary file, "
         "or UTF-16 text?). Re-export it as UTF-8, e.g. iconv -f UTF-16 -t UTF-8."),
        ("x", ("x.csv", "x.csv"), 1, "csv2lp: error: x.csv: given twice; each input is converted once per run, "
                                     "twice would write every row twice: give it once."),
        ("x", ("x.csv", "./x.csv"), 1, "csv2lp: error: ./x.csv: given twice (also as x.csv); each input is converted "
                                       "once per run, twice would write every row twice: give it once."),
        ("x", ("*.csv", "x.csv"), 1, "csv2lp: error: x.csv: given twice; each input is converted once per run, "
                                     "twice would write every row twice: give it once."),
        (None, ("nothing*.csv",), 1, "csv2lp: error: nothing*.csv: the pattern matches no file."),
        (None, ("/dev/null",), 1,
         "csv2lp: error: /dev/null: the file is empty; a CSV file with a header line is expected."),
        ("dir", ("inspect", "data"), 1,
         "csv2lp: error: data: is a directory; give the files in it (for example data/*.csv)."),
        (None, ("inspect", "missing.csv"), 1, "csv2lp: error: missing.csv: no such file."),
        ("x", ("inspect", "x.csv", "x.csv"), 1, "csv2lp: error: x.csv: given twice; each input is converted once per "
                                                "run, twice would write every row twice: give it once."),
    ],
    ids=["missing", "directory", "empty", "binary garbage", "same file twice", "same file spelt twice",
         "glob and name", "glob matching nothing", "/dev/null", "inspect directory", "inspect missing",
         "inspect twice"],
)
def test_inputs_that_cannot_be_converted(tmp_path: Path, inputs, setup: str | None, args: tuple[str, ...],
                                         status: int, message: str) -> None:
    if setup == "dir":
        (tmp_path / "data").mkdir()
    elif setup == "empty":
        inputs("empty.csv", b"")
    elif setup == "binary":
        inputs("garbage.csv", bytes(range(256)) * 64)
    elif setup == "x":
        inputs("x.csv", SMALL)

    result = run(*args, cwd=tmp_path)

    assert (result.status, result.stdout) == (status, b"")
    assert result.stderr == f"{message}\n"
    assert not (tmp_path / "csv2lp-rejects.csv").exists()


def test_a_file_of_only_a_header_converts_to_nothing(tmp_path: Path, inputs) -> None:
    inputs("head.csv", "station,n,time\n")

    result = run("head.csv", "-o", "o.lp", cwd=tmp_path)

    assert (result.status, result.stdout) == (0, b"")
    assert result.messages == ["0 rows read from 1 file", "0 lines written", "0 rows rejected"]
    assert (tmp_path / "o.lp").read_bytes() == b""


def test_a_run_whose_reader_ends_at_once_exits_cleanly_every_time(tmp_path: Path, inputs) -> None:
    """Regression: such a run aborted at exit in about 2 of 100 runs (status 134, "terminate called without
    an active exception": Arrow's thread let go of the reader during the interpreter's shutdown; console.py).
    30 runs catch that more often than not; 400 runs by hand: 0 aborts with the fix."""
    inputs("head.csv", "station,n,time\n")

    statuses = [run("head.csv", "-o", "o.lp", cwd=tmp_path).status for _ in range(30)]

    assert statuses == [0] * 30


def test_an_unreadable_file(tmp_path: Path, inputs) -> None:
    prefix = root_without_override()
    secret = inputs("secret.csv", SMALL)
    secret.chmod(0o000)
    try:
        result = run("secret.csv", cwd=tmp_path, prefix=prefix)
    finally:
        secret.chmod(0o644)

    assert (result.status, result.stdout) == (1, b"")
    assert result.stderr == "csv2lp: error: secret.csv: cannot open: Permission denied.\n"


# ============================================================ the rest of the matrix: what the shell took away


@pytest.mark.parametrize(
    "command, message",
    [
        ("csv2lp - <&-", "csv2lp: error: -: stdin is closed; pipe the CSV into csv2lp, or give its file name."),
        ("csv2lp x.csv >&-",
         "csv2lp: error: stdout is closed (>&-); give -o FILE, or send the lines to a file or a pipe."),
        ("csv2lp x.csv -o ''", "csv2lp: error: -o: the path is empty; give a file name."),
        ("mkdir gone && cd gone && rmdir ../gone && csv2lp \"$OLDPWD/x.csv\"",
         "csv2lp: error: --rejects csv2lp-rejects.csv: cannot create a file in the working folder (removed): No such "
         f"file or directory (ENOENT); {QUARANTINE_FIX}."),
    ],
    ids=["stdin closed", "stdout closed", "empty -o", "working folder removed"],
)
def test_a_shell_that_took_something_away(tmp_path: Path, inputs, command: str, message: str) -> None:
    inputs("x.csv", SMALL)

    result = in_bash(command, cwd=tmp_path)

    assert (result.status, result.stdout) == (1, b"")
    assert result.stderr.splitlines()[-1] == message


# ============================================================ the rest of the matrix: execd's folders


@pytest.mark.parametrize(
    "config, message",
    [
        ('[spool]\ndir = "spool"\ndone_dir = "spool"\n',
         "[spool] done_dir = {spool} is the spool folder itself: what goes there would be picked up again as a new "
         "file; give it a folder of its own, e.g. {spool}/done."),
        ('[spool]\ndir = "spool"\nrejects_dir = "./spool/"\n',
         "[spool] rejects_dir = {spool} is the spool folder itself: what goes there would be picked up again as a "
         "new file; give it a folder of its own, e.g. {spool}/rejects."),
        ('[spool]\ndir = "spool"\nstate_file = "spool/state.csv"\n',
         "[spool] state_file = {spool}/state.csv is a name the spool's patterns match: it would be read as a CSV "
         "file; give it a name starting with '.' or put it elsewhere."),
    ],
    ids=["done is the spool", "rejects is the spool", "state file looks like input"],
)
def test_execd_refuses_folders_that_would_feed_the_spool(tmp_path: Path, inputs, config: str, message: str) -> None:
    inputs("csv2lp.toml", config + '[convert]\npreset = "movebank"\n')

    result = run("execd", "--config", "csv2lp.toml", cwd=tmp_path)

    assert result.status == 1
    assert result.stderr == f"E! csv2lp execd: csv2lp.toml: {message.format(spool=tmp_path / 'spool')}\n"


def test_execd_with_a_spool_it_cannot_create(tmp_path: Path) -> None:
    result = run("execd", "--spool", "/proc/csv2lp-test/spool", "--preset", "movebank", cwd=tmp_path)

    assert result.status == 1
    assert "E! cannot create /proc/csv2lp-test: No such file or directory; create it and give it to the user " \
           "Telegraf runs as.\n" in result.stderr


@pytest.mark.parametrize("folder", ["spool", "done", "rejects", "error"])
def test_execd_with_a_read_only_folder_stops_before_reading_a_file(tmp_path: Path, inputs, folder: str) -> None:
    prefix = root_without_override()
    spool = tmp_path / "spool"
    for sub in ("done", "rejects", "error"):
        (spool / sub).mkdir(parents=True)
    inputs("spool/gps.csv", SMALL)
    locked = spool if folder == "spool" else spool / folder
    locked.chmod(0o555)
    try:
        result = run("execd", "--spool", "spool", "--preset", "movebank", cwd=tmp_path, prefix=prefix)
    finally:
        locked.chmod(0o755)

    key = "dir" if folder == "spool" else f"{folder}_dir"
    assert result.status == 1
    assert (f"E! [spool] {key} {locked}: cannot create a file in {locked}: Permission denied (EACCES); give it to "
            f"the user Telegraf runs as.\n") in result.stderr
    assert (spool / "gps.csv").exists() and result.stdout == b""


def test_execd_with_a_missing_config(tmp_path: Path) -> None:
    result = run("execd", "--config", "missing.toml", cwd=tmp_path)

    assert result.status == 1
    assert result.stderr == ("E! csv2lp execd: missing.toml: cannot read the execd config: No such file or "
                             "directory.\n")
