"""converter/'s layering, as declared in setup.cfg's [importlinter] contracts, holds.

`lint-imports` (import-linter) reads every import of the package; a module that imports a
layer above its own, or a sibling it must stay apart from, breaks the contract. The second
test plants such an import in a copy of the package, so that a contract that checks nothing
would fail here too.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = shutil.which("lint-imports")
pytestmark = pytest.mark.skipif(LINT_IMPORTS is None and not os.environ.get("CI"),
                                reason="import-linter is not installed (pip install -e '.[test]')")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS is not None, "import-linter is not installed: pip install -e '.[test]'"
    return subprocess.run([LINT_IMPORTS, "--no-cache", str(root / "setup.cfg")], cwd=root, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(root)})


def test_every_contract_is_kept():
    done = lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    names = [config[s]["name"] for s in config.sections() if s.startswith("importlinter:contract:")]
    assert len(names) >= 2
    for name in names:
        assert f"{name} KEPT" in done.stdout, done.stdout


@pytest.mark.parametrize("module, planted, broken", [
    ("read/header.py", "from ..pipeline import convert", "converter's layers"),
    ("sinks/file.py", "from ..execd import run", "converter's layers"),
    ("read/source.py", "from ..encode import encoder", "converter's layers"),
    ("encode/cells.py", "import rich", "optional and presentation libraries"),
])
def test_an_import_against_the_layers_breaks_a_contract(tmp_path, module, planted, broken):
    shutil.copytree(REPO / "converter", tmp_path / "converter", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "setup.cfg", tmp_path / "setup.cfg")
    target = tmp_path / "converter" / module
    target.write_text(target.read_text() + f"\n{planted}  # planted by the test\n")
    done = lint(tmp_path)
    assert done.returncode != 0, done.stdout
    assert f"{broken}" in done.stdout and "BROKEN" in done.stdout, done.stdout
