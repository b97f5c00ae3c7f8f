"""The `csv2lp` command's entry point (and `python -m converter`'s): the CLI, started fast.

pyarrow imports pandas the first time it is handed a Python object (`pa.scalar(0)`, or a
compute function called with a Python number), only to ask whether the object is a pandas one.
csv2lp never hands it one, yet that import cost ~0.2-0.25 s of every start here (0.45 s ->
0.2 s to import the CLI; `python -X importtime`): a tenth of a second-long conversion, and
paid again by Telegraf's execd at every restart. So the command makes pandas look absent to
that first look, as if it were not installed (a case pyarrow supports). This is done for the
command's own process only, never on `import converter`: a program that uses the library and
pandas keeps both.
"""

from __future__ import annotations

import importlib.abc
import sys


class _PandasLooksAbsent(importlib.abc.MetaPathFinder):
    """Answers `import pandas` (and its submodules) with ModuleNotFoundError."""

    def find_spec(self, fullname, path, target=None):
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ModuleNotFoundError("csv2lp does not use pandas (its command hides it from pyarrow)", name=fullname)
        return None


def hide_pandas_from_pyarrow() -> bool:
    """Make `import pandas` fail in this process unless pandas is imported already; whether it did."""
    if "pandas" in sys.modules or any(isinstance(f, _PandasLooksAbsent) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _PandasLooksAbsent())
    return True


def main() -> None:
    hide_pandas_from_pyarrow()
    from .cli import main as cli_main  # after the finder: the CLI's imports are the first to use pyarrow

    cli_main()
