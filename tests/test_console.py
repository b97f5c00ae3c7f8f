"""converter.console: the `csv2lp` command starts without importing pandas; the library is untouched."""

from __future__ import annotations

import subprocess
import sys

import pytest

import converter
from support.data import SAMPLE


def _python(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, **kwargs)


def test_the_command_converts_without_importing_pandas(tmp_path):
    out = tmp_path / "sample.lp"
    done = _python("-X", "importtime", "-m", "converter", str(SAMPLE), "--preset", "movebank", "-o", str(out), "-q")
    assert done.returncode == 0, done.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert "pyarrow" in imported and "converter.encode.timestamps" in imported  # the importtime listing is complete
    # pyarrow still asks for pandas (the refused attempt is listed too), but none of it loads.
    assert "pandas" in imported and not [name for name in imported if name.startswith("pandas.")]
    assert len(out.read_bytes().splitlines()) == 1200


def test_the_command_process_ends_without_pandas(tmp_path):
    # The command ends with os._exit (console.py), past any atexit handler: look just before it.
    script = ("import os, sys; real_exit = os._exit; "
              "os._exit = lambda code: (print('pandas loaded:', 'pandas' in sys.modules, flush=True), real_exit(code)); "
              "from converter.console import main; sys.argv = ['csv2lp', *sys.argv[1:]]; main()")
    done = _python("-c", script, str(SAMPLE), "--preset", "movebank", "-o", str(tmp_path / "x.lp"), "-q")
    assert (done.returncode, done.stdout.strip()) == (0, "pandas loaded: False"), done.stderr


def test_the_library_keeps_pandas_and_pyarrow_working_together():
    script = ("import converter; from converter import convert, load_preset; import pandas, pyarrow as pa; "
              "assert convert.__module__ == 'converter.pipeline'; print(pa.table({'a': [7]}).to_pandas()['a'][0])")
    done = _python("-c", script)
    assert (done.returncode, done.stdout.strip()) == (0, "7"), done.stderr


def test_pandas_imported_first_is_left_visible():
    script = ("import pandas; from converter.console import hide_pandas_from_pyarrow as hide; "
              "print(hide()); import pandas.api")
    done = _python("-c", script)
    assert (done.returncode, done.stdout.strip()) == (0, "False"), done.stderr


def test_hiding_makes_pandas_look_not_installed():
    script = ("from converter.console import hide_pandas_from_pyarrow as hide; print(hide(), hide())\n"
              "try:\n    import pandas\nexcept ModuleNotFoundError as exc:\n    print(exc.name)")
    done = _python("-c", script)
    assert done.stdout.split() == ["True", "False", "pandas"], done.stderr


def test_public_names_load_on_first_use():
    from converter import pipeline

    assert converter.convert is pipeline.convert and "convert" in converter.__all__
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        converter.nonsense  # noqa: B018
