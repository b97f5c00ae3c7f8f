"""Every option of every csv2lp command with hostile values, run in this (child) process.

`python -m support.option_sweep WORKDIR` writes one JSON line per case to WORKDIR/results.jsonl: the command,
the option, the value, the exit status, stderr, and whether it ended in an exception other
than SystemExit (a traceback for a user). The options are taken from click's own list of each
command's parameters, so a new option is swept without anyone adding it here; its values come
from its type (numbers, choices, paths, free text), plus the values every option gets.

One process runs the cases of convert, inspect and presets (click's CliRunner, in process): a
child per case would cost ~0.3 s of start-up each, ~3 minutes for the sweep. execd takes over
the process's stdout and signals, so its cases run as children, two at a time, with fewer
values. The test runs this module as one child, so that a
case that hangs or runs away with memory fails the test (its timeout, its peak RSS) instead of
pytest itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
from click.testing import CliRunner

from converter import cli

GOOD = "host,v,time\na,1,2020-01-01T00:00:00Z\nb,2,2020-01-01T00:00:01Z\n"
# A port nothing listens on: influx options reach the point where the server is asked, and fail there.
CLOSED_URL = "http://127.0.0.1:9"

# Every option, whatever its type, gets these.
COMMON = ["", " ", "\n", "-", "--", "\x01", "\x7f", "é", "😀", "x" * 5000, "'\"", "%s%n", "../..", "/dev/zero",
          "/proc/self/mem", "/nonexistent/dir/file", "{workdir}", "{workdir}/good.csv"]
INTEGERS = ["-1", "0", "1", "65535", "65536", "99999", "2147483648", "99999999999999", "9" * 40, "1e3", "0x10",
            "1.5", "nan", "inf", "-0"]
FLOATS = ["-1", "0", "1e308", "1e309", "nan", "inf", "-inf", "0.0000001"]
TEXT = ["http://[::1", "http://127.0.0.1:99999", "http://127.0.0.1:0", "http://127.0.0.1:-1", "http://:8086",
        "http://h st:8086", "https://", "file:///etc/passwd", "http://u:p@127.0.0.1:9", "tab", '"', "\r", "\t",
        ",", ";", "::", "=", "a=b=c", "x:float", "x:nope", "=x", "x=", "%Q%", "Mars/Olympus", "+99:00",
        "%Y%m%d%H%M%S%f", "movebank", "nope"]

# What a command needs besides the option, so that the run reaches the option's use.
BASE = {
    "convert": ["good.csv", "-t", "host", "--rejects", "rejects.csv"],
    "inspect": ["good.csv", "-t", "host"],
    "execd": ["--spool", "spool", "--preset", "movebank"],
    "presets": [],
}
# Options that only apply along with others.
COMPANIONS = {
    ("convert", "--bucket"): ["--influx-url", CLOSED_URL],
    ("convert", "--org"): ["--influx-url", CLOSED_URL, "--bucket", "b"],
    ("convert", "--token-file"): ["--influx-url", CLOSED_URL, "--bucket", "b"],
    ("convert", "--batch-lines"): ["--influx-url", CLOSED_URL, "--bucket", "b"],
    ("convert", "--connections"): ["--influx-url", CLOSED_URL, "--bucket", "b"],
    ("convert", "--influx-url"): ["--bucket", "b"],
}
# Options whose command must not get its BASE counterpart too (they replace it).
REPLACES = {
    ("execd", "--spool"): ["--spool", "spool"],
    ("execd", "--preset"): ["--preset", "movebank"],
    ("execd", "--mapping"): ["--preset", "movebank"],
    ("convert", "--rejects"): ["--rejects", "rejects.csv"],
}


# execd's cases are children: a value of each kind.
EXECD_VALUES = ["", "\n", "\x01", "é", "x" * 5000, "../..", "/dev/zero", "/proc/self/mem", "/nonexistent/dir/file",
                "{workdir}/good.csv", "-1", "99999999999999", "nan", "bogus", "http://[::1"]
CHILD_TIMEOUT_S = 60


def values_for(command: str, param: click.Option) -> list[str]:
    if command == "execd":
        return EXECD_VALUES
    kind = param.type
    if isinstance(kind, click.IntRange) or kind is click.INT or isinstance(kind, click.types.IntParamType):
        return INTEGERS + COMMON[:6]
    if isinstance(kind, click.types.FloatParamType):
        return FLOATS + COMMON[:6]
    if isinstance(kind, click.Choice):
        return ["bogus", "", "NS", *COMMON[:6]]
    return COMMON + TEXT


def cases() -> list[tuple[str, str, str]]:
    found = []
    for name, command in sorted(cli.main.commands.items()):
        for param in command.params:
            if not isinstance(param, click.Option) or param.is_flag or param.name in ("help",):
                continue
            option = max(param.opts, key=len)
            for value in values_for(name, param):
                found.append((name, option, value))
    return found


def args_for(command: str, option: str, value: str, workdir: Path) -> list[str]:
    base = list(BASE[command])
    replaced = REPLACES.get((command, option))
    if replaced:
        index = base.index(replaced[0])
        del base[index:index + len(replaced)]
    value = value.format(workdir=workdir) if "{workdir}" in value else value
    return [command, *base, *COMPANIONS.get((command, option), []), option, value]


def run_case(runner: CliRunner, command: str, option: str, value: str, workdir: Path) -> dict:
    args = args_for(command, option, value, workdir)
    if command == "execd":
        return run_child(command, option, value, args)
    result = runner.invoke(cli.main, args, input="", env={"INFLUX_TOKEN": "t"})
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    return {"command": command, "option": option, "value": value, "status": result.exit_code,
            "stderr": result.stderr, "crashed": crashed,
            "exception": repr(result.exception) if crashed else None}


def run_child(command: str, option: str, value: str, args: list[str]) -> dict:
    try:
        done = subprocess.run([sys.executable, "-m", "converter", *args], input=b"", capture_output=True,
                              timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"command": command, "option": option, "value": value, "status": None, "stderr": "",
                "crashed": True, "exception": f"did not end within {CHILD_TIMEOUT_S} s"}
    stderr = done.stderr.decode("utf-8", "replace")
    crashed = "Traceback" in stderr or done.returncode < 0
    return {"command": command, "option": option, "value": value, "status": done.returncode, "stderr": stderr,
            "crashed": crashed, "exception": stderr[-500:] if crashed else None}


def main() -> None:
    root = Path(sys.argv[1])
    # Two folders down, so that "../.." is still the test's own folder (execd would watch it).
    workdir = root / "a" / "b"
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)
    (workdir / "good.csv").write_text(GOOD)
    (workdir / "spool").mkdir(exist_ok=True)
    runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()
    only = sys.argv[2:]  # command/option filters, for a run by hand
    chosen = [c for c in cases() if not only or any(f in c[:2] for f in only)]
    with open(root / "results.jsonl", "w") as results:
        def record(result: dict) -> None:
            results.write(json.dumps(result) + "\n")
            results.flush()

        for command, option, value in chosen:
            if command == "execd":
                continue
            print(f"{command} {option} {value!r}", file=sys.stderr, flush=True)  # the case a hang is in
            record(run_case(runner, command, option, value, workdir))
            for leftover in ("rejects.csv",):
                (workdir / leftover).unlink(missing_ok=True)
        children = [c for c in chosen if c[0] == "execd"]
        with ThreadPoolExecutor(2) as pool:
            for result in pool.map(lambda c: run_case(runner, *c, workdir), children):
                record(result)


if __name__ == "__main__":
    main()
