"""The database's own ceiling: ready-made, gzip'd line protocol POSTed as fast as it is acknowledged.

The bodies are cut (5,000 lines each, as Telegraf's shipped batch) and compressed before
the clock starts, so the clock sees nothing but the requests: one or more kept-alive
connections, each sending its next body as soon as the last one was answered 204.
"""

from __future__ import annotations

import gzip
import http.client
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LINES_PER_REQUEST = 5_000
GZIP_LEVEL = 1  # the test fixtures' level; the server's work (inflate, parse, store) hardly depends on it
HTTP_TIMEOUT_S = 60.0


def gzip_bodies(lines_path: Path, lines_per_request: int = LINES_PER_REQUEST) -> list[bytes]:
    """The file's lines as gzip'd bodies of `lines_per_request` whole lines."""
    bodies: list[bytes] = []
    batch: list[bytes] = []
    with open(lines_path, "rb") as source:
        for line in source:
            batch.append(line)
            if len(batch) == lines_per_request:
                bodies.append(gzip.compress(b"".join(batch), compresslevel=GZIP_LEVEL))
                batch = []
    if batch:
        bodies.append(gzip.compress(b"".join(batch), compresslevel=GZIP_LEVEL))
    return bodies


@dataclass
class PostResult:
    seconds: float  # the first request sent to the last one answered
    requests: int
    client_cpu_seconds: float  # the posting threads' own CPU (they run inside the benchmark)
    error: str | None = None


def post_all(url: str, path: str, params: dict[str, str], headers: dict[str, str], bodies: list[bytes], *,
             connections: int, answered: Callable[[int], None] = lambda n: None) -> PostResult:
    """POST every body, `connections` at a time; the first refused request stops every connection.

    `answered(n)` is called with the number of bodies answered 204 so far, after each."""
    parts = urllib.parse.urlsplit(url)
    target = f"{path}?{urllib.parse.urlencode(params)}"
    lock = threading.Lock()
    next_body = iter(bodies)
    errors: list[str] = []
    sent = [0]
    cpu = [0.0]

    def worker() -> None:
        began = time.thread_time()
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HTTP_TIMEOUT_S)
        try:
            while True:
                with lock:
                    if errors:
                        return
                    body = next(next_body, None)
                if body is None:
                    return
                connection.request("POST", target, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status != 204:
                    with lock:
                        errors.append(f"{path} answered {response.status}: {answer[:300].decode('utf-8', 'replace')}")
                    return
                with lock:
                    sent[0] += 1
                    answered(sent[0])
        except (OSError, http.client.HTTPException) as exc:
            with lock:
                errors.append(f"{path}: {exc}")
        finally:
            connection.close()
            with lock:
                cpu[0] += time.thread_time() - began

    threads = [threading.Thread(target=worker, name=f"post-{n}") for n in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return PostResult(time.monotonic() - started, sent[0], cpu[0], errors[0] if errors else None)
