"""Regression tests, each named after what broke (found by the bad-input suite)."""

from __future__ import annotations

import csv
import subprocess
import textwrap
from pathlib import Path


def convert(tmp_path: Path, text: str, *args: str) -> tuple[int, list[str], list[tuple[int, str]]]:
    (tmp_path / "in.csv").write_text(textwrap.dedent(text).lstrip("\n"))
    done = subprocess.run(["csv2lp", "in.csv", "--rejects", "rejects.csv", "-q", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    rejects = []
    if (tmp_path / "rejects.csv").exists():
        with open(tmp_path / "rejects.csv", newline="") as f:
            rejects = [(int(row[1]), row[2]) for row in list(csv.reader(f))[1:]]
    return done.returncode, done.stdout.splitlines(), rejects


# timestamps.py `_strptime`: pc.strftime of an ns timestamp writes %S as "00.000000000",
# so the round-trip check never matches and EVERY row of a strptime --time-format is rejected.
def test_time_that_does_not_match_a_strptime_pattern_is_the_only_reject(tmp_path: Path) -> None:
    status, lines, rejects = convert(tmp_path, """
        station,temp,time
        a,1.5,01/01/2020 00:00:00
        b,2.5,2020-01-01 00:00:01
        c,3.5,01/01/2020 00:00:02
        """, "-m", "w", "-t", "station", "--time-format", "%d/%m/%Y %H:%M:%S", "--precision", "s")

    assert rejects == [(3, "unparseable time in column 'time'")]
    assert lines == ["w,station=a temp=1.5 1577836800", "w,station=c temp=3.5 1577836802"]
    assert status == 3


# rowerrors.time_problem builds f"{kind} time in column ..." and timestamps.LOCAL_TIME_GAP
# already ends in "time": the reason reads "... local time time in column 'time'".
def test_dst_gap_and_fold_with_timezone_are_rejected_with_a_readable_reason(tmp_path: Path) -> None:
    status, lines, rejects = convert(tmp_path, """
        name,n,time
        a,1,2021-03-28 01:30:00
        b,2,2021-03-28 02:30:00
        c,3,2021-10-31 02:30:00
        d,4,2021-10-31 03:30:00
        """, "-m", "w", "-t", "name", "--timezone", "Europe/Berlin", "--precision", "s")

    assert rejects == [(3, "nonexistent or ambiguous local time in column 'time'"),
                       (4, "nonexistent or ambiguous local time in column 'time'")]
    assert lines == ["w,name=a n=1 1616891400", "w,name=d n=4 1635647400"]
    assert status == 3


def csv2lp_stderr(tmp_path: Path, text: str, *args: str, env: dict | None = None) -> tuple[int, str]:
    import os

    (tmp_path / "in.csv").write_text(textwrap.dedent(text).lstrip("\n"))
    done = subprocess.run(["csv2lp", "in.csv", "-q", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})
    return done.returncode, done.stderr


# mapping.resolve passes what=f"field key {key!r}" to names.key_name, whose _check_name then
# writes f"{what} {name!r}": the key is shown twice, and the message names no file.
def test_control_character_in_a_header_name_is_named_once_with_the_file(tmp_path: Path) -> None:
    status, stderr = csv2lp_stderr(tmp_path, "a\tb,v,time\n1,2,2020-01-01T00:00:00Z\n")

    assert status == 1
    assert stderr == ("csv2lp: error: in.csv: field key 'a\\tb' contains a control character, which line "
                      "protocol does not allow; rename it.\n")


# mapping.resolve iterates the frozensets `checked_type_columns` and `exclude`: with two missing
# columns, which one the error names depends on PYTHONHASHSEED (seen: 'nope2' for seeds 0-2,4,5,
# 'nope1' for seed 3). The first one given should be named, every time.
def test_the_first_missing_type_column_is_named_whatever_the_hash_seed(tmp_path: Path) -> None:
    messages = {
        csv2lp_stderr(tmp_path, "v,time\n1,2020-01-01T00:00:00Z\n", "--type", "nope1=float", "--type",
                      "nope2=float", env={"PYTHONHASHSEED": str(seed)})[1]
        for seed in range(6)
    }

    assert messages == {"csv2lp: error: in.csv: column 'nope1' (--type) is not in the header. Columns: 'v', "
                        "'time'.\n"}


# timestamps._cast_iso -> _seconds_plus_fraction bisects with cells.cast_per_element, and one
# bad time makes the bisection try ~2 casts per row (57,684 casts for a 29k-row batch): a
# batch with a single unparseable time takes ~1.1 s instead of ~2 ms (500x), on every batch
# that holds one. Seen converting the fishers export concatenated with its own header.
def test_one_bad_time_does_not_make_its_batch_parse_row_by_row(monkeypatch) -> None:
    """Regression: the second-chance parse turned null rows into "", so every row of a batch
    with one bad time was cast on its own (~60,000 casts, 500x slower). Counted, not timed."""
    import pyarrow as pa

    from converter.encode import cells as cells_module
    from converter.mapping import Precision
    from converter.encode.timestamps import parse_times

    casts = []
    original = cells_module._bisect

    def counting(cells, lo, hi, *args):
        casts.append(hi - lo)
        return original(cells, lo, hi, *args)

    monkeypatch.setattr(cells_module, "_bisect", counting)
    good = [f"2011-02-11 17:{i % 60:02d}:00.000".encode() for i in range(30_000)]
    parsed = parse_times(pa.array(good + [b"yesterday"], pa.binary()), fmt="iso8601", timezone="UTC",
                         precision=Precision.NS)

    assert [kind for kind, _ in parsed.problems] == ["unparseable"]
    assert parsed.values.null_count == 1
    assert len(casts) < 200, f"{len(casts)} bisection steps for 30,001 times with one bad one"
