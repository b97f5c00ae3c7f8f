"""Lines straight into InfluxDB: `/api/v2/write` (2.x, 3.x, Telegraf's listener) or `/write` (1.x).

The converter's lines are already line protocol, so nothing here builds points: blocks of
lines are routed, cut into requests, compressed and sent, all of it per block or per
request with Arrow, numpy and zlib, never per line. The standard library's http.client
does the HTTP (influxdb-client is not needed any more; see setup.cfg).

    pipeline ──write_lines(block)──▶ InfluxSink
                                      │ split_by_route: each line to connection hash(time) % N
                                      ▼
                                Batcher per connection: 5,000-line chunks (zero-copy slices)
                                      │ gzip on a worker thread, ahead of the sender
                                      ▼
                         bounded queue per connection ── full: write_lines waits, reading stalls
                                      ▼
                      Sender thread per connection: POST, one at a time, retried with backoff
                                      ▼
                   Books: confirmed / refused / given up / not sent, counted per request

Promises (each one tested against real servers):

- A line counts as written when the server confirmed its request (2xx), never before.
- 429, 5xx and lost connections are retried with exponential backoff, reported through
  `notify`; while the server is away the queues fill and the reading stops: flat memory.
- The first refused request (or one whose retries ran out) stops the run: no request
  leaves after it, what is queued is counted as not sent, and the error names exactly
  how many lines were confirmed and how many were not.
- Copies of one point (same series and time) travel on one connection, in file order,
  so InfluxDB keeps the same last copy as with one request at a time (chunks.py).
- Until the first request is confirmed, one request is in flight at a time: a wrong
  token or database is refused once.
- Secrets come from the environment or a file, never from argv, and are masked in every
  message (server.py).
"""

from .buckets import create_bucket_if_missing
from .chunks import Batcher, Chunk, line_times, split_by_route, time_routes
from .sender import Books, WriteSettings
from .server import (
    Api,
    Credentials,
    InfluxTarget,
    InfluxWriteError,
    detect_api,
    read_credentials,
    read_token,
)
from .sink import InfluxSink, open_influx_sink

__all__ = [
    "Api", "Batcher", "Books", "Chunk", "Credentials", "InfluxSink", "InfluxTarget", "InfluxWriteError",
    "WriteSettings", "create_bucket_if_missing", "detect_api", "line_times", "open_influx_sink",
    "read_credentials", "read_token", "split_by_route", "time_routes",
]
