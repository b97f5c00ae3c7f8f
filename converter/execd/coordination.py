"""Several csv2lp under one Telegraf: they share each output's window through a folder.

Users run one [[inputs.execd]] per spool, and every one of them writes into the same
output buffers. The bound of flow.py counts what one csv2lp emitted since Telegraf's
report; with three of them each would fill the window on its own. So each csv2lp
publishes, in a folder all of them reach ([flow] coordination_dir), one small file:

    <coordination_dir>/<writer>.json   {"claim": 120000, "added": [[t, n], ...], "waiting": true, ...}

- `claim`: the lines this writer has written or is about to write, counted from its start
  (raised BEFORE it writes, under the folder's lock);
- `added`: (time, n) pairs, newest last: by time t at least n of its lines had been added
  to Telegraf's buffers (from its marks on Telegraf's page: delivery.py);
- `waiting`: it has lines held back for want of room.

A writer may write n lines only while holding `.lock` (flock) and only if, for every
watched output with Telegraf's report B stamped at t,

    B + sum over writers w of (claim_w - added_w by t) + n  <=  window

and it raises its claim before it lets go of the lock. Whatever any writer does next, the
buffer cannot pass the window: the lines not in B are all in someone's claim, and no two
writers can both count on the same room. While others are waiting, a writer takes no more
than its share, window / (writers waiting or in flight), so each goes at its share of the
output's speed.

A writer holds an flock on its own file for as long as it runs; a file whose lock is free
belongs to a process that is gone (killed or exited). Its claim still counts for
DEAD_GRACE_S after that was first noticed, while what it wrote may still be in its pipe,
and then the file is removed.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DEAD_GRACE_S = 10.0
HISTORY_S = 30.0  # how far back a (time, lines) history reaches: reports older than that give no room
LOCK_NAME = ".lock"


@dataclass(frozen=True)
class Peer:
    """Another writer, as its file says."""

    writer: str
    claim: int
    added: tuple[tuple[float, int], ...]
    waiting: bool
    alive: bool

    def outstanding(self, at: float) -> int:
        """Its lines that may have reached the buffer after `at`: the claim less what was added by then."""
        return self.claim - added_by(self.added, at)


def added_by(history: Sequence[tuple[float, int]], at: float) -> int:
    """The last count at or before `at` in a (time, count) history; 0 before the first."""
    count = 0
    for moment, value in history:
        if moment > at:
            break
        count = value
    return count


class Coordination:
    """This writer's file in the shared folder, and the folder's lock."""

    def __init__(self, folder: Path, writer: str, *, clock: Callable[[], float] = time.time) -> None:
        self.folder = Path(folder)
        self.writer = writer
        self.clock = clock
        self.path = self.folder / f"{writer}.json"
        self._lock = threading.Lock()  # flock does not exclude the threads of one process
        self._lock_fd: int | None = None
        self._own_fd: int | None = None
        self._notices: dict[str, float] = {}  # writer -> when we first found it gone

    def open(self) -> None:
        """Make the folder and this writer's file. OSError when the folder cannot be used."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        with self._locked():
            self._own_fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(self._own_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._write(claim=0, added=[], waiting=False)

    def close(self) -> None:
        """Let go of the file: the others count its claim for DEAD_GRACE_S more, then remove it."""
        for fd in (self._own_fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._own_fd = self._lock_fd = None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            assert self._lock_fd is not None
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextmanager
    def exclusive(self) -> Iterator[list[Peer]]:
        """The folder's lock, held while the caller decides and publishes; yields the other writers."""
        with self._locked():
            yield self._peers()

    def publish(self, *, claim: int, added: Sequence[tuple[float, int]], waiting: bool) -> None:
        """Rewrite this writer's file; call it inside `exclusive()`."""
        self._write(claim=claim, added=added, waiting=waiting)

    def update(self, *, claim: int, added: Sequence[tuple[float, int]], waiting: bool) -> None:
        """Take the lock and publish (a new `added` entry from the page, a change of `waiting`)."""
        with self._locked():
            self._write(claim=claim, added=added, waiting=waiting)

    def live_writers(self) -> int:
        """Writers running now, this one included (the fixed pace is shared among them)."""
        with self.exclusive() as peers:
            return 1 + sum(1 for peer in peers if peer.alive)

    def _write(self, *, claim: int, added: Sequence[tuple[float, int]], waiting: bool) -> None:
        if self._own_fd is None:
            return
        document = {"writer": self.writer, "pid": os.getpid(), "claim": claim, "waiting": waiting,
                    "added": [[round(t, 4), n] for t, n in added], "at": round(self.clock(), 3)}
        data = json.dumps(document).encode()
        os.ftruncate(self._own_fd, 0)
        os.pwrite(self._own_fd, data, 0)

    def _peers(self) -> list[Peer]:
        peers = []
        try:
            names = sorted(os.listdir(self.folder))
        except OSError:
            return []
        for name in names:
            if not name.endswith(".json") or name == self.path.name:
                continue
            peer = self._read(self.folder / name)
            if peer is not None:
                peers.append(peer)
        return peers

    def _read(self, path: Path) -> Peer | None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                alive = False
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return None
                alive = True
            try:
                document = json.loads(os.pread(fd, 1 << 20, 0) or b"{}")
                peer = Peer(str(document["writer"]), int(document["claim"]),
                            tuple((float(t), int(n)) for t, n in document["added"]), bool(document["waiting"]), alive)
            except (ValueError, KeyError, TypeError):
                peer = None
            if alive:
                return peer
            writer = path.name[: -len(".json")]
            first = self._notices.setdefault(writer, self.clock())
            if peer is None or self.clock() - first > DEAD_GRACE_S:
                os.unlink(path)  # gone, and whatever it wrote has long been read by Telegraf
                self._notices.pop(writer, None)
                return None
            return peer
        finally:
            os.close(fd)


class History:
    """(time, lines) pairs, newest last: by that time at least that many lines had been added to the buffers."""

    def __init__(self, start: int = 0) -> None:
        # Before this process wrote anything, none of its lines were anywhere: true of any
        # report, however old, so the first entry answers for all time before the next.
        self.entries: list[tuple[float, int]] = [(float("-inf"), start)]

    def add(self, at: float, lines: int) -> None:
        if lines > self.entries[-1][1] or at > self.entries[-1][0]:
            self.entries.append((at, lines))
        cut = at - HISTORY_S
        drop = 0
        while drop + 1 < len(self.entries) and self.entries[drop + 1][0] <= cut:
            drop += 1  # the last entry before the cut stays: it answers for any time after it
        if drop:
            del self.entries[:drop]

    def by(self, at: float) -> int | None:
        """Lines added by `at`; None when `at` is older than what is kept (answer: nothing is known)."""
        if at < self.entries[0][0]:
            return None
        return added_by(self.entries, at)
