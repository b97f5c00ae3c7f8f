"""Every option of every command (taken from click's own parameter lists, support/option_sweep.py)
with hostile values: no traceback, a documented exit status, and a bad number is a usage error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_option_with_hostile_values_ends_without_a_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
    done = subprocess.run([sys.executable, "-m", "support.option_sweep", str(tmp_path)], env=env,
                          capture_output=True, timeout=900, cwd=REPO / "tests")
    assert done.returncode == 0, done.stderr[-2000:]
    results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(results) > 1000  # every option of convert, inspect, execd, presets
    crashed = [(r["command"], r["option"], r["value"][:40], (r["exception"] or "")[-200:]) for r in results
               if r["crashed"]]
    assert crashed == []
    assert {r["status"] for r in results} <= {0, 1, 2, 3}
    for r in results:
        errors = [line for line in r["stderr"].splitlines() if line.startswith(("Error:", "csv2lp: error:"))]
        assert len(errors) <= 1, r
    # A number out of range or not a number never gets past click.
    numbers = [r for r in results if r["command"] != "execd" and r["value"] in ("99999999999999", "nan", "-1")
               and r["option"] in ("--block-size", "--lines", "--s2-level", "--connections")]
    assert numbers and all(r["status"] == 2 for r in numbers), [r for r in numbers if r["status"] != 2]
