"""Every path a run will write, checked before the first row is read.

A path is refused, with the option that gave it and the fix, when its folder is missing
or cannot take a new file, when it is a folder, when it is one of the inputs (writing it
would destroy the input before or while it is read), or when another output of the same
run writes it too. "The same" is asked of the file system where both paths exist
(os.path.samefile: hard links, symlinks, `./x.csv` and `/abs/x.csv`), and of the resolved
path where neither exists yet. Character devices (/dev/null, /dev/full, a terminal) take
any number of writers and are never "the same" as anything.

stdout is an output like the others when it carries the lines: the file or pipe the shell
connected to fd 1 (`> o.lp`, `>> o.lp`, `| cmd`) is compared, by device and inode, with
every other path, so `--rejects o.lp > o.lp` and `--summary-json /dev/stdout` are refused
too. The shell has already emptied a `>` target before csv2lp starts; nothing else is.

Whether a folder can take a new file is tried, not read off its mode bits: root may write
anywhere by the bits but not in /proc or on a read-only mount. The try creates a hidden
temporary file in the folder and removes it at once; an existing output file is opened for
appending (nothing is truncated) and closed. Nothing is created or truncated before every
check has passed.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from typing import Sequence

from ..errors import STDOUT_CLOSED, OutputError, os_error_text

STDIN = "-"
@dataclass(frozen=True)
class _Claim:
    option: str
    path: str


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _working_folder() -> str:
    try:
        return os.getcwd()
    except OSError:  # removed while the shell was in it
        return "(removed)"


def _resolved(path: str) -> str:
    try:
        return os.path.realpath(path)
    except OSError:  # the working folder is gone: only absolute paths can be resolved
        return os.path.normpath(path)


def same_file(a: str, b: str) -> bool:
    """Whether writing `a` would write `b`: the same file (where both exist) or the same resolved path."""
    sa, sb = _stat(a), _stat(b)
    if sa is not None and sb is not None:
        if stat.S_ISCHR(sa.st_mode) and stat.S_ISCHR(sb.st_mode):
            return False  # /dev/null twice is fine
        return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)
    if sa is not None or sb is not None:
        return False
    return _resolved(a) == _resolved(b)


def check_folder(shown: str, folder: str, *, fix: str) -> None:
    """`folder` exists, is a folder, and a new file can be created in it (tried, see above).
    `shown` names what needs it in the message (`--rejects out/r.csv`)."""
    info = _stat(folder)
    named = f"the working folder {_working_folder()}" if folder == "." else folder
    if info is None:
        raise OutputError(f"{shown}: the folder {folder} does not exist; create it, or {fix}.")
    if not stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{shown}: {folder} is not a folder; {fix}.")
    try:
        handle, probe = tempfile.mkstemp(prefix=".csv2lp-write-check-", dir=folder)
    except OSError as exc:
        raise OutputError(f"{shown}: cannot create a file in {named}: {os_error_text(exc)}; {fix}.") from None
    os.close(handle)
    os.unlink(probe)


_IS_STDOUT = ("{shown} is where stdout goes (a > or >> redirect, a pipe, /dev/stdout), and the lines go there: "
              "one file cannot hold both; give each its own path (-o FILE for the lines).")


def _same_as_stdout(info: os.stat_result | None, stdout: os.stat_result) -> bool:
    return info is not None and (info.st_dev, info.st_ino) == (stdout.st_dev, stdout.st_ino)


class WriteGuard:
    """The inputs of a run, and the paths it will write, claimed one by one (see the module)."""

    def __init__(self, inputs: Sequence[str]) -> None:
        self.inputs = [item for item in inputs if item != STDIN]
        self._claims: list[_Claim] = []
        self._stdout: os.stat_result | None = None  # fd 1 when it carries the lines (claim_stdout), but a device

    def claim(self, option: str, path: str, *, fix: str = "give another path") -> None:
        """Check `path` for `option` (see the module) and remember it. Raise OutputError."""
        shown = f"{option} {path}"
        if not path:
            raise OutputError(f"{option}: the path is empty; give a file name.")
        for item in self.inputs:
            if same_file(path, item):
                what = "the input" if path == item else f"the input {item}"
                raise OutputError(f"{shown} is {what}: writing it would destroy the input; {fix}.")
        if self._stdout is not None and _same_as_stdout(_stat(path), self._stdout):
            raise OutputError(_IS_STDOUT.format(shown=shown))
        for earlier in self._claims:
            if same_file(path, earlier.path):
                raise OutputError(f"{shown} is the same file as {earlier.option} {earlier.path}: one file cannot hold "
                                  f"both; give each its own path.")
        info = _stat(path)
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise OutputError(f"{shown} is a folder; give a file name (e.g. {os.path.join(path, 'out')}).")
        if info is None:
            check_folder(shown, os.path.dirname(path) or ".", fix=fix)
        elif stat.S_ISREG(info.st_mode):
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_APPEND))  # no O_TRUNC: nothing changes
            except OSError as exc:
                raise OutputError(f"{shown}: cannot write it: {os_error_text(exc)}; {fix}.") from None
        # FIFOs and devices: opening one to try it could block (a FIFO waits for its reader).
        self._claims.append(_Claim(option, path))

    def claim_stdout(self) -> None:
        """Refuse a stdout that is closed, that is an input file (`csv2lp x.csv >> x.csv`: it would read
        its own lines back), or that is the file of an output claimed before; remember it for the claims
        after (see the module)."""
        try:
            if sys.stdout is None:
                raise OSError(errno.EBADF, "closed")
            info = os.fstat(1)
        except OSError:
            raise OutputError(STDOUT_CLOSED) from None
        if stat.S_ISCHR(info.st_mode):
            return  # a terminal, /dev/null: any number of writers
        for earlier in self._claims:
            if _same_as_stdout(_stat(earlier.path), info):
                raise OutputError(_IS_STDOUT.format(shown=f"{earlier.option} {earlier.path}"))
        self._stdout = info
        if not stat.S_ISREG(info.st_mode):
            return
        for item in self.inputs:
            other = _stat(item)
            if other is not None and (other.st_dev, other.st_ino) == (info.st_dev, info.st_ino):
                raise OutputError(f"stdout is the input {item} (redirected with > or >>): the shell opened it for "
                                  f"writing before csv2lp started, so it is emptied or would be read back; "
                                  f"write the lines to another file (-o FILE).")
