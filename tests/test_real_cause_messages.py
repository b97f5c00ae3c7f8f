"""Messages that name the real cause (issue 24, point 5).

Regressions: a `;`-separated file read with the default `,` said "column 'host' (tag) is not in
the header. Columns: 'time;host;v'." (and without a mapping, converted every row into one field
named after the whole header, silently); a header-only file without a final line break gave
Arrow's "Empty CSV file or block: cannot infer number of columns" where one with it ends in exit 0.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_execd import children, drop, write_config  # noqa: F401 (children: a fixture)
from support.data import SAMPLE


def csv2lp(tmp_path: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "converter", *args], input=stdin, capture_output=True,
                          cwd=tmp_path, timeout=120, env=os.environ)


# --- a wrong delimiter ----------------------------------------------------------------------------

@pytest.mark.parametrize(("delimiter", "given", "said"), [
    (";", [], "The header looks ';'-separated: give -d ';'."),
    ("\t", [], "The header looks tab-separated: give -d tab."),
    ("|", [], "The header looks '|'-separated: give -d '|'."),
    (",", ["-d", ";"], "The header looks ','-separated: give -d ','."),
])
def test_a_tag_missing_from_a_header_read_with_the_wrong_delimiter_names_the_delimiter(tmp_path, delimiter, given,
                                                                                         said):
    header = delimiter.join(["time", "host", "v"])
    (tmp_path / "in.csv").write_text(f"{header}\n" + delimiter.join(["2020-01-01T00:00:00Z", "a", "1"]) + "\n")
    run = csv2lp(tmp_path, "in.csv", "-t", "host", *given)
    assert run.returncode == 1
    assert run.stderr.decode().strip() == (f"csv2lp: error: in.csv: column 'host' (tag) is not in the header. {said} "
                                           f"Columns: {header!r}.")


def test_a_column_missing_from_a_header_of_the_right_delimiter_gets_no_delimiter_hint(tmp_path):
    (tmp_path / "in.csv").write_text("time;host;v\n2020-01-01T00:00:00Z;a;1\n")
    run = csv2lp(tmp_path, "in.csv", "-t", "hots")
    assert run.stderr.decode().strip() == "csv2lp: error: in.csv: column 'hots' (tag) is not in the header. " \
                                          "Columns: 'time;host;v'."


@pytest.mark.parametrize("command", ["convert", "inspect"])
def test_a_one_column_header_that_splits_by_another_delimiter_is_warned_about(tmp_path, command):
    (tmp_path / "in.csv").write_text("time;host;v\n2020-01-01T00:00:00Z;a;1\n")
    run = csv2lp(tmp_path, command, "in.csv")
    assert run.returncode == 0
    out = (run.stdout + run.stderr).decode()
    assert "warning: in.csv: the header is one column, 'time;host;v'. The header looks ';'-separated: give -d ';'." \
        in out


def test_execd_names_its_delimiter_setting_for_a_file_of_another_delimiter(tmp_path, children):
    spool = tmp_path / "spool"
    drop(spool, SAMPLE.read_bytes().replace(b",", b";"), "semicolons.csv")
    config = write_config(tmp_path, spool)
    child = children("--config", str(config))
    error = child.wait_for_log(r"^E! .*$").group()
    assert child.stop() == 0
    assert "is not in the header. The header looks ';'-separated: set delimiter = \";\" in [convert] of " \
           f"{config}." in error
    assert "-d" not in error.split("Columns:")[0]


# --- a header-only file without its final line break ----------------------------------------------

HEADER = b"time,host,v"


@pytest.mark.parametrize(("name", "content"), [
    ("plain.csv", HEADER),
    ("bom.csv", b"\xef\xbb\xbf" + HEADER),
    ("quoted.csv", b'time,host,"v"'),
    ("cr.csv", HEADER + b"\r"),
    ("packed.csv.gz", None),
])
@pytest.mark.parametrize("command", ["convert", "inspect", "stdin"])
def test_a_header_only_file_without_its_final_line_break_is_a_header_only_file(tmp_path, name, content, command):
    def run(data: bytes, suffix: str) -> tuple[int, bytes]:
        path = tmp_path / f"{suffix}-{name}"
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        if command == "stdin":
            done = csv2lp(tmp_path, "-", "-m", "m", "-t", "host", stdin=path.read_bytes())
        else:
            done = csv2lp(tmp_path, *(["inspect"] if command == "inspect" else []), path.name, "-m", "m", "-t", "host")
        out = (done.stdout + done.stderr).replace(path.name.encode(), b"FILE")
        return done.returncode, b"\n".join(line for line in out.splitlines() if b" s (" not in line)

    data = HEADER if content is None else content
    without, with_break = run(data, "without"), run(data.rstrip(b"\r") + b"\n", "with")
    assert without == with_break
    assert without[0] == 0 and b"Empty CSV" not in without[1] and b"Traceback" not in without[1]
