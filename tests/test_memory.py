"""converter.cli.memory: the CLI's processes allocate through jemalloc unless the user chose a pool."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PRINT_POOL = "from converter.cli.memory import prefer_jemalloc; print(prefer_jemalloc())"


def _pool_in_child(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run([sys.executable, "-c", PRINT_POOL], env={**clean, **env}, capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout.strip()


def test_jemalloc_becomes_the_pool():
    assert _pool_in_child() == "jemalloc"


@pytest.mark.parametrize("chosen", ["system", "mimalloc"])
def test_a_pool_chosen_by_the_environment_stays(chosen):
    assert _pool_in_child(ARROW_DEFAULT_MEMORY_POOL=chosen) == chosen


def test_the_cli_sets_the_pool_before_converting(tmp_path):
    source = tmp_path / "one.csv"
    source.write_text("time,v\n2024-01-01T00:00:00Z,1\n")
    script = ("import sys, pyarrow as pa; from converter.cli import main; sys.argv = ['csv2lp', sys.argv[1], "
              "'--time-column', 'time', '-m', 'm', '-o', '/dev/null', '-q']\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\nprint(pa.default_memory_pool().backend_name)")
    clean = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run([sys.executable, "-c", script, str(source)], env=clean, capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "jemalloc"
