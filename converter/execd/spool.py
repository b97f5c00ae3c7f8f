"""The spool folder: its folders made ready, which files are ready, what a file is, and moving
files out of the way.

A file is ready when its name matches one of the patterns (and does not start with
'.'), it is a regular file right inside the spool, and it has not been modified for
`settle_seconds`. The drop protocol (write elsewhere, then rename into the spool) makes
every file appear complete; the settle time is only a safety net for a file copied
straight into the spool, whose modification time keeps moving while it grows.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConverterError
from ..plan.outputs import check_folder
from .checkpoint import FileIdentity

if TYPE_CHECKING:  # settings.py imports this module
    from .settings import SpoolSettings

HEAD_BYTES = 1 << 20
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Candidate:
    path: Path
    size: int
    mtime_ns: int


def matches(name: str, patterns: Sequence[str]) -> bool:
    """Hidden names (a drop in progress, `.x.csv.part`) never match."""
    return not name.startswith(".") and any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def scan(folder: Path, patterns: Sequence[str], *, settle_seconds: float, now: float | None = None,
         renamed_in: Callable[[str], bool] = lambda name: False) -> list[Candidate]:
    """Ready files, oldest first (by modification time, then name): first dropped, first sent.

    A file is ready once it has not been modified for `settle_seconds`, or at once when it was
    seen being renamed into the folder (`renamed_in`, arrivals.py): the drop protocol's rename
    is atomic."""
    now = time.time() if now is None else now
    ready: list[Candidate] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if not matches(entry.name, patterns):
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue  # done/, rejects/ and error/ live here too; symlinks could point anywhere
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # gone between listing and stat
            if now - info.st_mtime < settle_seconds and not renamed_in(entry.name):
                continue  # still being written, or just renamed into place unseen: look again next time
            ready.append(Candidate(Path(entry.path), info.st_size, info.st_mtime_ns))
    ready.sort(key=lambda c: (c.mtime_ns, c.path.name))
    return ready


def identity(path: Path) -> FileIdentity:
    """Raise OSError when the file cannot be read (no permission, gone)."""
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        head = hashlib.sha256(handle.read(HEAD_BYTES)).hexdigest()
    return FileIdentity(path.name, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, head)


def content_sha256(path: Path, stop: threading.Event | None = None) -> str | None:
    """SHA-256 of the whole file (about 0.3 s per 100 MB); None when `stop` is set meanwhile."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            if stop is not None and stop.is_set():
                return None
            digest.update(chunk)
    return digest.hexdigest()


def numbered(name: str, number: int) -> str:
    """`gps.csv.gz` as `gps.2.csv.gz`: the number goes before the extensions, which stay readable."""
    if number == 0:
        return name
    stem, dot, extensions = name.partition(".")
    return f"{stem}.{number}{dot}{extensions}" if stem else f"{name}.{number}"


def free_name(folder: Path, name: str) -> Path:
    """`folder/name`, or `name` numbered 1, 2, ... when that is taken: nothing is ever overwritten."""
    number = 0
    while (folder / numbered(name, number)).exists():
        number += 1
    return folder / numbered(name, number)


def move_into(folder: Path, path: Path) -> Path:
    """Rename `path` into `folder` (atomic on one filesystem); return where it went."""
    folder.mkdir(parents=True, exist_ok=True)
    target = free_name(folder, path.name)
    try:
        os.rename(path, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(path, target)  # another filesystem after all: copy, then delete
    return target


def prepare_folders(settings: SpoolSettings) -> None:
    """Create the spool's folders and the state file's, and try that each takes new files: files are
    renamed out of the spool and into the others. Raises ConverterError naming the folder and the fix."""
    folders = {"dir": settings.dir, "done_dir": settings.done_dir, "rejects_dir": settings.rejects_dir,
               "error_dir": settings.error_dir}
    try:
        for folder in (*folders.values(), settings.state_file.parent):
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConverterError(f"cannot create {exc.filename}: {exc.strerror or exc}; create it and give it to the "
                             f"user Telegraf runs as.") from None
    for key, folder in folders.items():
        check_folder(f"[spool] {key} {folder}", str(folder), fix="give it to the user Telegraf runs as")
