"""The execd state file: which file is being sent and how far, the files sent but not yet
confirmed, and every file done.

Progress is kept in CSV *source line numbers*, not row counts: they survive blank lines,
ragged rows and rejects, and a resumed run that reads the file from its start can tell
by the line number alone whether a line was sent before.

The file is replaced atomically (write a temp file beside it, fsync, rename, fsync the
folder), so after a crash or `kill -9` it holds either the old state or the new one,
never half of each. This module only reads and writes the state; what to do with it is
execd's business.

    {"version": 2,
     "current": {"identity": {...}, "sha256": "...", "started_at": "...",
                 "emitted_through_line": 123456, "replay_from_line": 118000,
                 "lines_emitted": 98765, "runs": 2, "rejects_path": "...", "emitted_all": false},
     "unconfirmed": [{...the same, "emitted_all": true...}, ...],
     "finished": {"<sha256>": {"name": "...", "status": "done", "moved_to": "...",
                               "lines": 47347, "rejected": 0, "finished_at": "..."}}}

`unconfirmed` holds, oldest first, the files whose every line went out but that Telegraf
has not yet been seen writing to every output (delivery.py); they stay in the spool. A
start sends each of them again after its `replay_from_line` (the last line confirmed),
then resumes `current`. Version 1 files (no `unconfirmed`) are read as they are.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ConverterError

STATE_VERSION = 2
READABLE_VERSIONS = (1, 2)


class CorruptStateError(ConverterError):
    """The state file exists but cannot be understood (truncated by hand, another program's file)."""


@dataclass(frozen=True)
class FileIdentity:
    """What makes "the same file": its inode, size, modification time and first MiB.

    The head digest catches a new file that got the inode of a deleted one (ext4 and
    overlayfs reuse inodes readily).
    """

    name: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    head_sha256: str


@dataclass
class FileProgress:
    """The file being sent: every line with a source line <= emitted_through_line went out."""

    identity: FileIdentity
    sha256: str  # of the whole file as stored (compressed bytes for .gz): the "sent once" key
    started_at: str
    emitted_through_line: int = 0
    # Where a resumed run starts sending again: the last line Telegraf was seen writing to
    # every output (delivery.py), or without its numbers a little before
    # emitted_through_line, so that what was still in the pipe is sent again (spooler.py).
    replay_from_line: int = 0
    lines_emitted: int = 0  # lines written by every run so far, re-sent ones included
    runs: int = 1
    rejects_path: str | None = None  # chosen once, so a resumed run rewrites the same file
    emitted_all: bool = False  # every line went out at least once (then it waits in `unconfirmed`)


@dataclass
class FinishedFile:
    name: str
    status: str  # "done" or "error"
    moved_to: str | None
    lines: int
    rejected: int
    finished_at: str
    message: str = ""


@dataclass
class State:
    current: FileProgress | None = None
    finished: dict[str, FinishedFile] = field(default_factory=dict)
    unconfirmed: list[FileProgress] = field(default_factory=list)

    def sent_before(self, sha256: str) -> FinishedFile | None:
        """The record of a file with this content that was sent completely, if any."""
        record = self.finished.get(sha256)
        return record if record is not None and record.status == "done" else None

    def open_files(self) -> list[FileProgress]:
        """Every file with lines not yet confirmed, in the order they were started."""
        return [*self.unconfirmed, *([self.current] if self.current is not None else [])]

    def being_sent(self, sha256: str) -> FileProgress | None:
        """An open file with this content, if any."""
        return next((p for p in self.open_files() if p.sha256 == sha256), None)

    def close(self, progress: FileProgress) -> None:
        """Take a file out of `current` or `unconfirmed` (it is done, failed, or gone)."""
        if self.current is progress:
            self.current = None
        self.unconfirmed = [p for p in self.unconfirmed if p is not progress]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "current": asdict(self.current) if self.current is not None else None,
            "unconfirmed": [asdict(p) for p in self.unconfirmed],
            "finished": {key: asdict(value) for key, value in self.finished.items()},
        }


def now_text() -> str:
    """UTC time to the second, ISO 8601: readable in the state file and in log lines."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def load(path: str | Path) -> State:
    """The saved state; an empty one when the file does not exist. Raise CorruptStateError otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return State()
    except OSError as exc:
        raise ConverterError(f"{path}: cannot read the state file: {exc.strerror or exc}.") from None
    try:
        document = json.loads(text)
        if document.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"version {document.get('version')!r}, expected {STATE_VERSION}")
        current = document.get("current")
        progress = _progress(current) if current is not None else None
        unconfirmed = [_progress(item) for item in document.get("unconfirmed", [])]
        finished = {key: FinishedFile(**value) for key, value in document.get("finished", {}).items()}
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise CorruptStateError(f"{path}: not a csv2lp state file ({exc}).") from None
    return State(progress, finished, unconfirmed)


def _progress(document: dict[str, Any]) -> FileProgress:
    document = dict(document)
    identity = FileIdentity(**document.pop("identity"))
    return FileProgress(identity=identity, **document)


def save(path: str | Path, state: State) -> None:
    """Replace the state file atomically and durably."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp")
    data = json.dumps(state.to_json(), indent=1, sort_keys=True).encode("utf-8")
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def hold_lock(state_file: Path, stop: threading.Event, *, warn: Callable[[str], None],
              warn_after: float = 1.0) -> int | None:
    """An exclusive lock next to the state file, held for the process's life (the fd stays open).

    A restarted Telegraf can start a new csv2lp while the old one is still draining its pipe
    and saving its last checkpoint; both writing one state file would resume from a stale
    one. The newcomer waits here; None when stopped while waiting. OSError when the lock
    file cannot be opened.
    """
    fd = os.open(state_file.with_name(f"{state_file.name}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    began, warned = time.monotonic(), False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        if not warned and time.monotonic() - began >= warn_after:
            warn(f"another csv2lp execd holds {state_file}; waiting for it to exit")
            warned = True
        if stop.wait(0.05):
            os.close(fd)
            return None
