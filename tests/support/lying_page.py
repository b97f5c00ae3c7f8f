"""A stand-in between csv2lp and Telegraf's real /metrics page that can lie on demand.

It forwards every GET to the real page (Telegraf's [[outputs.prometheus_client]]) and, in a
lying mode, changes what Telegraf said, or answers too late, or stops listening: the hostile
pages of issue 23 point 3, at whatever moment a test picks. Telegraf stays real: the test
reads its true buffer from the real page, not from here.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .influxdb import free_loopback_port

# mode -> how a forwarded page is changed (None: not forwarded at all, see serve())
LIES = {
    "honest": lambda page: page,
    "nan": lambda page: _set_value(page, "buffer_size", "NaN"),
    "inf": lambda page: _set_value(page, "buffer_size", "+Inf"),
    "huge_limit": lambda page: _set_value(page, "buffer_limit", "1e+30"),
    "text": lambda page: _set_value(page, "buffer_size", "lots"),
}
SLOW_S = 6.0  # longer than csv2lp's 2 s timeout for the page


def _set_value(page: str, field: str, value: str) -> str:
    return re.sub(rf"^(internal_write_{field}\{{[^}}]*\}}) \S+", rf"\g<1> {value}", page, flags=re.M)


class LyingPage:
    def __init__(self) -> None:
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self.target: str | None = None  # the real page, set once Telegraf's port is known
        self.mode = "honest"  # a key of LIES, or "slow", or "vanished"
        self.served = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LyingPage:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                mode = owner.mode
                if mode == "slow":
                    time.sleep(SLOW_S)
                    mode = "honest"
                try:
                    with urllib.request.urlopen(owner.target, timeout=5) as response:
                        body = LIES[mode](response.read().decode()).encode()
                except OSError:
                    self.send_error(502)
                    return
                owner.served += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        ThreadingHTTPServer.daemon_threads = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def vanish(self) -> None:
        """Stop listening: csv2lp's next fetch is refused, as when Telegraf's page is gone."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def come_back(self) -> None:
        self.mode = "honest"
        deadline = time.monotonic() + 10
        while self._server is None:
            try:
                self.start()
            except OSError:  # the port may linger a moment after the close
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        self.vanish()

