"""Telegraf's page, fetched in a thread of its own while anyone wants fresh numbers.

A page that is slow (or a Telegraf that is busy) must never hold a batch back by the
seconds of an HTTP timeout: the sending thread only ever looks at the newest page this
thread has handed over (flow.py). The thread fetches every `interval` seconds for as long
as `want()` was called within the last WANT_S seconds (lines waiting for room, batches
waiting for confirmation), and sleeps otherwise: an idle csv2lp asks Telegraf nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .telegraf_stats import Page, StatsClient, StatsUnavailable

WANT_S = 2.0


class Poller:
    def __init__(self, client: StatsClient, interval: float, deliver: Callable[[Page | StatsUnavailable], None],
                 stop: threading.Event) -> None:
        self.client = client
        self.interval = interval
        self.deliver = deliver  # called in this thread with each page or failure, in order
        self.stop = stop
        self._wanted_until = 0.0
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="csv2lp-telegraf-numbers", daemon=True)
        self._thread.start()

    def want(self) -> None:
        """Keep fetching for WANT_S more seconds; wake the thread at once if it sleeps."""
        self._wanted_until = time.monotonic() + WANT_S
        self._wake.set()

    def _run(self) -> None:
        while not self.stop.is_set():
            if time.monotonic() >= self._wanted_until:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            began = time.monotonic()
            try:
                result: Page | StatsUnavailable = self.client.fetch()
            except StatsUnavailable as exc:
                result = exc
            except Exception as exc:  # a bug of ours must not silence the numbers for good
                result = StatsUnavailable(f"{type(exc).__name__}: {exc}")
            self.deliver(result)
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - began)))
        self.client.close()
