"""The `csv2lp` command's entry point (and `python -m converter`'s): the CLI, started fast.

pyarrow imports pandas the first time it is handed a Python object (`pa.scalar(0)`, or a
compute function called with a Python number), only to ask whether the object is a pandas one.
csv2lp never hands it one, yet that import cost ~0.2-0.25 s of every start here (0.45 s ->
0.2 s to import the CLI; `python -X importtime`): a tenth of a second-long conversion, and
paid again by Telegraf's execd at every restart. So the command makes pandas look absent to
that first look, as if it were not installed (a case pyarrow supports). This is done for the
command's own process only, never on `import converter`: a program that uses the library and
pandas keeps both.

The command also ends without the interpreter's shutdown (os._exit, after flushing stdout and
stderr). Arrow lets go of a CSV reader on its own thread when the reader's last read-ahead
completes, and letting go of the Python stream it reads from takes the GIL; when that falls
into the interpreter's shutdown, the thread is torn down inside a C++ destructor and the
process aborts ("terminate called without an active exception", status 134) after a run that
had finished and printed its summary: about 2 runs in 100 of a file that holds only a header
(its reader ends at once), seen with gdb in pyarrow 26. Every file and pipe the command
writes is closed or flushed before it returns, so nothing is left for the shutdown to do.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
from typing import NoReturn


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


def main() -> NoReturn:
    hide_pandas_from_pyarrow()
    from .cli import main as cli_main  # after the finder: the CLI's imports are the first to use pyarrow

    try:
        cli_main()  # click ends it with SystemExit
    except SystemExit as done:
        exit_now(done.code)
    exit_now(0)


def exit_now(code: int | str | None) -> NoReturn:
    """sys.exit(code)'s status and message, without the interpreter's shutdown (see above)."""
    if code is not None and not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass  # a reader that went away, a stream closed already: nothing left to tell
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
