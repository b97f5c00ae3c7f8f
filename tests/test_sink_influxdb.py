"""The direct-write sink (converter/sinks/influxdb/) without a database: how lines are routed
and cut into request bodies, where secrets come from, the CLI's rules for the write flags,
what goes on the wire, the books when a request is refused, and a server that is not there.

Delivery into real databases is proven in tests/test_v1_write_path.py (InfluxDB 1.6.7),
tests/test_v2_write_path.py (Telegraf's v2 listener relaying into 1.6.7) and
tests/test_influxdb2_write_path.py (a real InfluxDB 2). The HTTP servers here only record
and answer: they show what csv2lp sends and how it counts, never that a database takes it.
"""

from __future__ import annotations

import base64
import gzip
import http.server
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from converter import cli
from converter.mapping import Precision
from converter.sinks.file import lines_buffer
from converter.sinks.influxdb import (
    Api,
    Batcher,
    open_influx_sink,
    InfluxSink,
    InfluxTarget,
    InfluxWriteError,
    WriteSettings,
    line_times,
    read_credentials,
    read_token,
    split_by_route,
    time_routes,
)
from converter.sinks.influxdb.server import detect_api, is_loopback, require_token
from support.data import REPO, SAMPLE
from support.influxdb import free_loopback_port

TOKEN = "tok-3f9a1c-not-a-real-secret"
PASSWORD = "pw-77d0e1-not-a-real-secret"
CLI_TIMEOUT_S = 60
QUICK_RETRIES = dict(retry_interval_s=0.05, max_retries=2, max_retry_delay_s=0.2, max_retry_time_s=5, timeout_s=2)


def lines_array(*lines: str) -> pa.Array:
    return pa.array([line + "\n" for line in lines], type=pa.string())


def run_cli(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli.main, list(args), env=env)


def chunk_bytes(chunks) -> bytes:
    return b"".join(chunk.body() for chunk in chunks)


# --- cutting lines into request bodies ---------------------------------------------------


def test_chunks_hold_whole_lines():
    batcher = Batcher(batch_lines=3, max_bytes=1 << 20)

    full = batcher.add(lines_array(*(f"m v={i}" for i in range(10))))
    last = batcher.flush()

    assert [c.lines for c in full] == [3, 3, 3] and last is not None and last.lines == 1
    assert [c.body() for c in [*full, last]] == [
        b"m v=0\nm v=1\nm v=2\n", b"m v=3\nm v=4\nm v=5\n", b"m v=6\nm v=7\nm v=8\n", b"m v=9\n",
    ]
    assert batcher.flush() is None


def test_chunks_fill_up_across_blocks():
    # Blocks of 4 lines, chunks of 5: the pipeline's blocks do not decide the request size.
    batcher = Batcher(batch_lines=5, max_bytes=1 << 20)

    full = [chunk for block in range(3) for chunk in batcher.add(lines_array(*(f"m v={block}{i}" for i in range(4))))]

    assert [c.lines for c in full] == [5, 5]
    assert batcher.pending_lines == 2
    every_line = [f"m v={b}{i}\n".encode() for b in range(3) for i in range(4)]
    assert chunk_bytes(full) == b"".join(every_line[:10])
    assert batcher.flush().body() == b"".join(every_line[10:])


def test_chunks_of_a_sliced_array_start_at_the_slice():
    lines = lines_array("a v=1", "b v=2", "c v=3", "d v=4").slice(1, 2)
    batcher = Batcher(batch_lines=10, max_bytes=1 << 20)

    assert batcher.add(lines) == []
    assert batcher.flush().body() == b"b v=2\nc v=3\n"


def test_chunks_are_cut_at_max_bytes_and_a_longer_line_goes_alone():
    long_line = "m s=\"" + "x" * 100 + "\""
    batcher = Batcher(batch_lines=100, max_bytes=12)

    full = batcher.add(lines_array("m v=1", "m v=2", long_line, "m v=3"))

    # "m v=1\nm v=2\n" is 12 bytes: fits; the long line is alone; the last one waits.
    assert [c.lines for c in full] == [2, 1]
    assert full[1].body() == long_line.encode() + b"\n"
    assert batcher.flush().body() == b"m v=3\n"


@settings(max_examples=200, deadline=None)
@given(
    blocks=st.lists(st.lists(st.text(alphabet="abc =,\"é", min_size=1, max_size=30), max_size=25), max_size=5),
    batch_lines=st.integers(1, 20),
    max_bytes=st.integers(1, 200),
)
def test_chunks_give_back_every_line_in_order(blocks, batch_lines, max_bytes):
    arrays = [lines_array(*block) for block in blocks]
    batcher = Batcher(batch_lines=batch_lines, max_bytes=max_bytes)

    chunks = [chunk for array in arrays for chunk in batcher.add(array)]
    if (last := batcher.flush()) is not None:
        chunks.append(last)

    assert chunk_bytes(chunks) == b"".join(lines_buffer(a).to_pybytes() for a in arrays)
    for chunk in chunks:
        body = chunk.body()
        assert 1 <= chunk.lines <= batch_lines and body.count(b"\n") == chunk.lines == len(body.splitlines())
        assert chunk.lines == 1 or len(body) <= max_bytes


# --- routing: every copy of a point on one connection ----------------------------------------


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("movebank,individual=F1 lat=42.5,event_id=7i 1297445400944", 1297445400944),
        ("m v=1 1700000000000000000", 1700000000000000000),
        ('m s="a 123 b" 456', 456),
        ("m v=1 -1", 1),  # the sign is not read: the route does not need it
        ("m v=1.5", 5),  # no time: the digits the last field ends in
        ('m s="x"', 0),
        ("m v=1 9223372036854775807", 9223372036854775807),
    ],
    ids=["ms", "ns", "string-with-digits", "negative", "no-time", "no-digits", "max"],
)
def test_line_times_reads_the_digits_before_the_newline(line, value):
    assert line_times(lines_array(line)).tolist() == [value]


def test_line_times_of_a_slice_and_of_short_lines():
    lines = lines_array("x", "m v=1 5", "m v=2 66", "7").slice(1, 3)

    assert line_times(lines).tolist() == [5, 66, 7]


@settings(max_examples=100, deadline=None)
@given(
    points=st.lists(st.tuples(st.integers(0, 3), st.integers(-(2**40), 2**62), st.floats(allow_nan=False)),
                    min_size=1, max_size=60),
    connections=st.integers(1, 4),
)
def test_copies_of_a_point_always_share_a_connection(points, connections):
    """The ordering rule, without a server: same series and time, whatever the fields, same route."""
    lines = lines_array(*(f"m,s=S{s} v={v!r},w={i}i {t}" for i, (s, t, v) in enumerate(points)))

    routes = time_routes(lines, connections)

    by_point: dict[tuple[int, int], set[int]] = {}
    for (s, t, _), route in zip(points, routes.tolist()):
        by_point.setdefault((s, t), set()).add(route)
    assert all(len(seen) == 1 for seen in by_point.values())
    assert all(0 <= r < connections for r in routes.tolist())


@pytest.mark.parametrize(
    "times",
    [
        [1_297_445_400 + 600 * i for i in range(2_000)],  # ten-minute fixes in s: times end in 00
        [(1_297_445_400 + 600 * i) * 10**9 for i in range(2_000)],  # the same in ns: end in eleven zeros
        [1_297_445_400_944 + i for i in range(2_000)],  # one ms apart
    ],
    ids=["s", "ns", "ms"],
)
def test_routes_spread_regular_times_evenly(times):
    routes = time_routes(lines_array(*(f"m v=1 {t}" for t in times)), 2)

    assert 0.45 < routes.mean() < 0.55


def test_split_by_route_keeps_file_order_within_each_connection():
    lines = lines_array(*(f"m v={i}i {1000 + i % 7}" for i in range(200)))

    parts = split_by_route(lines, 3)

    assert sum(len(p) for p in parts) == 200
    for part in parts:
        values = [int(line.split("=")[1].split("i")[0]) for line in part.to_pylist()]
        assert values == sorted(values)
    routes = time_routes(lines, 3)
    assert [len(p) for p in parts] == np.bincount(routes, minlength=3).tolist()


# --- secrets -------------------------------------------------------------------------------------


def test_token_file_wins_over_the_environment_and_is_stripped(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}  \nsecond line ignored\n")

    assert read_token(str(token_file), {"INFLUX_TOKEN": "from-env"}) == TOKEN


def test_token_from_the_environment():
    assert read_token(None, {"INFLUX_TOKEN": f"{TOKEN}\n"}) == TOKEN


@pytest.mark.parametrize(
    ("content", "environ", "message"),
    [
        (None, {}, "no API token: set INFLUX_TOKEN, or give --token-file FILE"),
        (None, {"INFLUX_TOKEN": "  "}, "no API token: set INFLUX_TOKEN"),
        ("\n\n", {"INFLUX_TOKEN": TOKEN}, "is empty; put the API token on its first line"),
    ],
    ids=["nothing", "blank-env", "empty-file"],
)
def test_missing_token_says_where_to_put_it(tmp_path, content, environ, message):
    token_file = None
    if content is not None:
        token_file = tmp_path / "token"
        token_file.write_text(content)
    with pytest.raises(InfluxWriteError, match=message):
        read_token(None if token_file is None else str(token_file), environ)


def test_unreadable_token_file_is_named(tmp_path):
    with pytest.raises(InfluxWriteError, match=r"--token-file .*missing: cannot read it \(No such file"):
        read_token(str(tmp_path / "missing"), {})


@pytest.mark.parametrize(
    ("file_text", "environ", "expected"),
    [
        (None, {"INFLUX_USERNAME": "ann", "INFLUX_PASSWORD": PASSWORD, "INFLUX_TOKEN": TOKEN},
         (TOKEN, "ann", PASSWORD, "$INFLUX_USERNAME/$INFLUX_PASSWORD and $INFLUX_TOKEN")),
        (None, {"INFLUX_USERNAME": "ann", "INFLUX_PASSWORD": PASSWORD, "INFLUX_TOKEN": f"bob:{TOKEN}"},
         (f"bob:{TOKEN}", "ann", PASSWORD, "$INFLUX_USERNAME/$INFLUX_PASSWORD and $INFLUX_TOKEN")),
        (None, {"INFLUX_USERNAME": "ann", "INFLUX_PASSWORD": PASSWORD},
         ("", "ann", PASSWORD, "$INFLUX_USERNAME/$INFLUX_PASSWORD")),
        (f"ann:{PASSWORD}:with-colon\n", {"INFLUX_USERNAME": "bob"},
         (f"ann:{PASSWORD}:with-colon", "ann", f"{PASSWORD}:with-colon", "--token-file")),
        (None, {"INFLUX_TOKEN": f"ann:{PASSWORD}"}, (f"ann:{PASSWORD}", "ann", PASSWORD, "$INFLUX_TOKEN")),
        (None, {"INFLUX_TOKEN": TOKEN}, (TOKEN, "", "", "$INFLUX_TOKEN")),
        (None, {}, ("", "", "", "")),
    ],
    ids=["user-and-token-both-kept", "env-user-wins-over-token-user", "user-only", "file-user-password",
         "token-user-password", "token", "nothing"],
)
def test_credentials_for_either_server(tmp_path, file_text, environ, expected):
    token_file = None
    if file_text is not None:
        token_file = tmp_path / "secret"
        token_file.write_text(file_text)

    found = read_credentials(None if token_file is None else str(token_file), environ)

    assert (found.token, found.username, found.password, found.origin) == expected
    assert PASSWORD not in repr(found) and TOKEN not in repr(found)


@pytest.mark.parametrize(
    ("api", "expected"),
    [(Api.V2, f"Token {TOKEN}"), (Api.V1, "Basic " + base64.b64encode(f"ann:{PASSWORD}".encode()).decode())],
    ids=["v2-gets-the-token", "v1-gets-the-user"],
)
def test_with_user_and_token_set_each_server_gets_its_own(api, expected):
    """Regression: with $INFLUX_USERNAME set, $INFLUX_TOKEN was dropped and a 2.x server refused the run."""
    found = read_credentials(None, {"INFLUX_USERNAME": "ann", "INFLUX_PASSWORD": PASSWORD, "INFLUX_TOKEN": TOKEN})
    target = InfluxTarget(url="http://127.0.0.1:1", bucket="b", org="o", token=found.token, api=api,
                          username=found.username, password=found.password)
    assert target.auth_headers() == {"Authorization": expected}


def test_a_user_without_a_token_is_told_the_user_serves_1x_only():
    with pytest.raises(InfluxWriteError, match=r"no API token: set INFLUX_TOKEN, or give --token-file FILE \(a file "
                                               r"holding the token\)\. \$INFLUX_USERNAME/\$INFLUX_PASSWORD sign in "
                                               r"to InfluxDB 1\.x only\. csv2lp takes no token"):
        require_token(read_credentials(None, {"INFLUX_USERNAME": "ann", "INFLUX_PASSWORD": PASSWORD}))


def test_target_repr_hides_the_secrets():
    target = InfluxTarget(url="http://127.0.0.1:1", bucket="b", org="o", token=TOKEN, username="ann",
                          password=PASSWORD)
    assert TOKEN not in repr(target) and PASSWORD not in repr(target)
    assert target.mask(f"x {TOKEN} y {PASSWORD}") == "x *** y ***"


@pytest.mark.parametrize(
    ("api", "bucket", "precision", "path"),
    [
        (Api.V2, "tracks", Precision.MS, "/api/v2/write?org=lab&bucket=tracks&precision=ms"),
        (Api.V1, "tracks", Precision.NS, "/write?db=tracks&precision=n"),
        (Api.V1, "tracks", Precision.US, "/write?db=tracks&precision=u"),
        (Api.V1, "tracks/one_year", Precision.S, "/write?db=tracks&precision=s&rp=one_year"),
    ],
    ids=["v2", "v1-ns", "v1-us", "v1-rp"],
)
def test_write_path_per_api(api, bucket, precision, path):
    target = InfluxTarget(url="http://127.0.0.1:1/", bucket=bucket, org="lab", api=api)
    assert target.write_path(precision) == path


@pytest.mark.parametrize(
    ("url", "loopback"),
    [("http://127.0.0.1:8086", True), ("http://127.3.4.5", True), ("http://localhost:8086/x", True),
     ("http://[::1]:8086", True), ("https://influx.example.org", False), ("http://10.0.0.7:8086", False),
     ("http://[2001:db8::1]", False)],
)
def test_loopback_urls(url, loopback):
    assert is_loopback(url) is loopback


# --- the CLI's rules for the write flags ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "x.lp", "--influx-url", "http://127.0.0.1:1", "--bucket", "b"],
         "-o/--output and --influx-url cannot be combined"),
        (["--bucket", "b", "--org", "o"], "--bucket, --org only go with --influx-url."),
        (["--create-bucket"], "--create-bucket only go with --influx-url."),
        (["--batch-lines", "10"], "--batch-lines only go with --influx-url."),
        (["--connections", "1"], "--connections only go with --influx-url."),
        (["--no-gzip"], "--gzip/--no-gzip only go with --influx-url."),
        (["--influx-url", "http://127.0.0.1:1"], "--influx-url needs --bucket"),
        (["--influx-url", "http://127.0.0.1:1", "--bucket", "b", "--connections", "0"],
         "Invalid value for '--connections': 0 is not in the range 1<=x<=8."),
    ],
    ids=["with-output", "bucket-alone", "create-bucket-alone", "batch-lines-alone", "connections-alone",
         "gzip-alone", "no-bucket", "no-connection"],
)
def test_write_flag_misuse_is_a_usage_error(args, message):
    result = run_cli("convert", str(SAMPLE), "--preset", "movebank", *args)

    assert result.exit_code == 2, result.output
    assert message in result.output


def test_there_is_no_token_or_password_option_on_the_command_line():
    for option in ("--token", "--password", "--username"):
        result = run_cli("convert", str(SAMPLE), "--influx-url", "http://127.0.0.1:1", "--bucket", "b", option, "x")

        assert result.exit_code == 2
        assert f"No such option '{option}'" in result.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("localhost:8086", "--influx-url 'localhost:8086': give the server's base URL, e.g. http://localhost:8086."),
        ("ftp://host", "--influx-url 'ftp://host': give the server's base URL, e.g. http://localhost:8086."),
        ("http://host:port", "--influx-url 'http://host:port': the port is not a number."),
        (f"http://ann:{PASSWORD}@host:8086",
         "--influx-url: the URL holds a user name or password, which other users can read in the process list; "
         "give the URL without it and put the secret in $INFLUX_USERNAME/$INFLUX_PASSWORD, $INFLUX_TOKEN or "
         "--token-file."),
    ],
    ids=["no-scheme", "ftp", "bad-port", "secret-in-url"],
)
def test_url_that_is_not_a_base_url_is_refused(url, message):
    result = run_cli("convert", str(SAMPLE), "--preset", "movebank", "--influx-url", url,
                     "--bucket", "b", env={"INFLUX_TOKEN": TOKEN})

    # A usage error since options are checked up front (issue 24): exit 2, before anything is read.
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == f"Error: {message}"


def test_a_server_that_cannot_be_reached_is_an_error_before_anything_is_read():
    url = f"http://127.0.0.1:{free_loopback_port()}"  # free: nothing listens there

    result = run_cli("convert", str(SAMPLE), "--preset", "movebank", "--influx-url", url, "--bucket", "b",
                     env={"INFLUX_TOKEN": TOKEN})

    assert result.exit_code == 1
    assert result.output == (f"csv2lp: error: cannot reach {url}: connection refused (GET /ping). Is the server at "
                             f"{url} running and reachable? Nothing was read yet.\n")


# --- csv2lp without influxdb-client -----------------------------------------------------------

# `sys.modules[name] = None` makes every `import name` raise ImportError, as if the
# package were not installed.
WITHOUT_CLIENT = textwrap.dedent(
    """\
    import sys
    sys.modules["influxdb_client"] = None
    from converter.cli import main
    try:
        main(sys.argv[1:])
    finally:
        loaded = sorted(m for m in sys.modules if m.startswith("influxdb_client"))
        sys.stderr.write("\\nloaded: %s\\n" % loaded)
    """
)


def run_without_client(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_CLIENT, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_S)


@pytest.mark.parametrize("args", [["--help"], ["convert", "--help"]], ids=["main", "convert"])
def test_help_works_without_influxdb_client(args):
    done = run_without_client(*args)

    assert done.returncode == 0, done.stderr
    assert "Usage: " in done.stdout
    assert "loaded: ['influxdb_client']" in done.stderr  # only the blocked entry: nothing imported


def test_converting_to_stdout_never_imports_influxdb_client():
    done = run_without_client("convert", str(SAMPLE), "--preset", "movebank", "-q")

    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1200
    assert "loaded: ['influxdb_client']" in done.stderr


# --- what goes on the wire ------------------------------------------------------------------


@dataclass
class Recorded:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes  # as received (gzip'd)
    status: int
    began: float
    ended: float = 0.0

    @property
    def lines(self) -> bytes:
        return gzip.decompress(self.body) if self.headers.get("Content-Encoding") == "gzip" else self.body


Answerer = Callable[[int], tuple[int, bytes]]


@dataclass
class RecordingServer:
    """A loopback HTTP server that keeps what it got and answers `answer(n)` to the n-th POST
    (default 204), after `delay_s`, with `answer_headers` too. GET /ping answers with `version`
    in a header named `version_header` (Go's servers spell it X-Influxdb-Version)."""

    url: str
    version: str = "v2.8.0"
    version_header: str = "X-Influxdb-Version"
    answer_headers: dict[str, str] = field(default_factory=dict)
    answer: Answerer = lambda n: (204, b"")
    delay_s: float = 0.0
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def in_flight_at_most(self) -> int:
        """The most requests that were being answered at the same moment."""
        events = sorted([(r.began, 1) for r in self.requests] + [(r.ended, -1) for r in self.requests])
        level = peak = 0
        for _, step in events:
            level += step
            peak = max(peak, level)
        return peak


@pytest.fixture
def recording_server() -> Iterator[RecordingServer]:
    port = free_loopback_port()
    recorder = RecordingServer(url=f"http://127.0.0.1:{port}")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as InfluxDB

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            self.send_response(204 if self.path.startswith("/ping") else 404)
            self.send_header(recorder.version_header, recorder.version)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:  # noqa: N802
            began = time.monotonic()
            parsed = urllib.parse.urlparse(self.path)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with recorder.lock:
                number = len(recorder.requests)
                status, text = recorder.answer(number)
                entry = Recorded(parsed.path, urllib.parse.parse_qs(parsed.query), dict(self.headers.items()),
                                 body, status, began)
                recorder.requests.append(entry)
            time.sleep(recorder.delay_s)
            entry.ended = time.monotonic()  # before the answer: the client may look at once
            self.send_response(status)
            for name, value in recorder.answer_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(text)))
            if text:
                self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def movebank_lines(n: int, *, start: int = 0) -> pa.Array:
    return lines_array(*(f"movebank,individual=F{i % 2} lat={i}.5 {1_600_000_000_000 + i}"
                         for i in range(start, start + n)))


def test_v2_requests_carry_the_lines_gzip_and_the_token(recording_server):
    lines = movebank_lines(5)
    target = InfluxTarget(url=recording_server.url, bucket="tracks", org="lab", token=TOKEN)
    sink = InfluxSink(target, precision=Precision.MS, settings=WriteSettings(batch_lines=2, connections=1))

    assert sink.write_lines(lines) == 5
    sink.close()

    requests = recording_server.requests
    assert b"".join(r.lines for r in requests) == lines_buffer(lines).to_pybytes()
    assert [r.lines.count(b"\n") for r in requests] == [2, 2, 1]
    for request in requests:
        assert request.path == "/api/v2/write"
        assert request.query == {"org": ["lab"], "bucket": ["tracks"], "precision": ["ms"]}
        assert request.headers["Content-Encoding"] == "gzip"
        assert request.headers["Authorization"] == f"Token {TOKEN}"
    assert (sink.lines_sent, sink.lines_confirmed, sink.requests_confirmed, sink.retries) == (5, 5, 3, 0)
    assert sink.report_lines()[0].startswith(
        f"5 lines confirmed by {recording_server.url} (bucket tracks) in 3 request(s) on 1 connection (")


@pytest.mark.parametrize(("gzip", "compressed"), [(None, False), (True, True), (False, False)],
                         ids=["loopback-default", "gzip", "no-gzip"])
def test_requests_to_this_machine_are_not_compressed_unless_asked(recording_server, monkeypatch, gzip, compressed):
    monkeypatch.setenv("INFLUX_TOKEN", TOKEN)
    sink = open_influx_sink(recording_server.url, bucket="b", org="o", token_file=None, create_bucket=False,
                            batch_lines=None, precision=Precision.S, notify=None, connections=1, gzip=gzip)
    sink.write_lines(movebank_lines(3))
    sink.close()

    (request,) = recording_server.requests
    assert ("Content-Encoding" in request.headers) is compressed
    assert request.lines == lines_buffer(movebank_lines(3)).to_pybytes()


def test_v1_requests_use_write_with_basic_auth_and_1x_precision_names(recording_server):
    target = InfluxTarget(url=recording_server.url, bucket="tracks/one_year", api=Api.V1, username="ann",
                          password=PASSWORD)
    sink = InfluxSink(target, precision=Precision.NS, settings=WriteSettings(connections=1))

    sink.write_lines(movebank_lines(3))
    sink.close()

    (request,) = recording_server.requests
    assert request.path == "/write"
    assert request.query == {"db": ["tracks"], "rp": ["one_year"], "precision": ["n"]}
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"ann:{PASSWORD}".encode()).decode()
    assert sink.report_lines()[0].startswith(
        f"3 lines confirmed by {recording_server.url} (database tracks, retention policy one_year) in 1 request(s)")


def test_two_connections_overlap_after_the_first_confirmed_request(recording_server):
    recording_server.delay_s = 0.05
    target = InfluxTarget(url=recording_server.url, bucket="b", org="o", token=TOKEN)
    sink = InfluxSink(target, settings=WriteSettings(batch_lines=100, connections=2))

    for block in range(10):
        sink.write_lines(movebank_lines(200, start=200 * block))
    sink.close()

    requests = sorted(recording_server.requests, key=lambda r: r.began)
    assert sink.lines_confirmed == 2_000
    assert requests[0].ended <= requests[1].began  # the first request went alone
    assert recording_server.in_flight_at_most() == 2
    # Every line arrived once; within each connection's requests, in file order.
    received = sorted(line for r in requests for line in r.lines.splitlines())
    assert received == sorted(lines_buffer(movebank_lines(2_000)).to_pybytes().splitlines())


# --- refusals: the first one stops the run, and the books are exact ----------------------------


def test_a_refused_first_request_is_the_only_request(recording_server):
    recording_server.answer = lambda n: (401, b'{"code":"unauthorized","message":"unauthorized access"}')
    target = InfluxTarget(url=recording_server.url, bucket="b", org="o", token=TOKEN)
    sink = InfluxSink(target, settings=WriteSettings(batch_lines=100, connections=2))

    sink.write_lines(movebank_lines(1_000))
    with pytest.raises(InfluxWriteError) as raised:
        sink.close()

    assert len(recording_server.requests) == 1
    assert str(raised.value) == (
        f"{recording_server.url} (bucket b) refused a write request: HTTP 401 Unauthorized: unauthorized access. "
        "The token was refused: check $INFLUX_TOKEN or --token-file. Stopped at the first failed request: "
        "0 lines confirmed, 1,000 NOT confirmed (100 in the refused request, 900 not sent after the stop)."
    )
    assert TOKEN not in str(raised.value)


def test_a_refusal_mid_import_stops_every_connection_and_counts_exactly(recording_server):
    """Request 7 is refused (bad data): nothing is sent after it but what was already in flight."""
    refused_at = 7
    recording_server.delay_s = 0.02
    recording_server.answer = lambda n: (400, b'{"code":"invalid","message":"unable to parse"}') \
        if n == refused_at else (204, b"")
    target = InfluxTarget(url=recording_server.url, bucket="b", org="o", token=TOKEN)
    sink = InfluxSink(target, settings=WriteSettings(batch_lines=100, connections=2))

    with pytest.raises(InfluxWriteError) as raised:
        for block in range(50):
            sink.write_lines(movebank_lines(200, start=200 * block))
        sink.close()
    sink.close()  # reported once: quiet now

    requests, books = recording_server.requests, sink.books
    # Once the refusal was known, no request left but the one the other connection had
    # already started (the server here answers at its own pace: the count is the sink's).
    assert len(requests) == books.requests_sent and [r.status for r in requests].count(400) == 1
    assert books.requests_sent - books.requests_sent_at_failure <= 1
    confirmed = sum(r.lines.count(b"\n") for r in requests if r.status == 204)
    assert sink.lines_confirmed == confirmed
    assert sink.books.lines_refused == 100
    assert sink.lines_sent == sink.lines_confirmed + 100 + sink.books.lines_not_sent
    assert str(raised.value).endswith(
        f"Stopped at the first failed request: {confirmed:,} lines confirmed, {sink.lines_sent - confirmed:,} NOT "
        f"confirmed (100 in the refused request, {sink.books.lines_not_sent:,} not sent after the stop).")


def test_retries_on_503_then_confirmed(recording_server):
    recording_server.answer = lambda n: (503, b'{"message":"starting"}') if n < 2 else (204, b"")
    notes: list[str] = []
    target = InfluxTarget(url=recording_server.url, bucket="b", org="o", token=TOKEN)
    sink = InfluxSink(target, settings=WriteSettings(connections=1, **QUICK_RETRIES), notify=notes.append)

    sink.write_lines(movebank_lines(10))
    sink.close()

    assert (sink.lines_confirmed, sink.retries, len(recording_server.requests)) == (10, 2, 3)
    assert [n.split(" in ")[0] for n in notes] == [
        f"write to {recording_server.url} failed (HTTP 503 Service Unavailable: starting); retrying (retry 1, up to "
        "2 per request)",
        f"write to {recording_server.url} failed (HTTP 503 Service Unavailable: starting); retrying (retry 2, up to "
        "2 per request)",
    ]


# No real server here sends its headers in lower case (Go's net/http writes X-Influxdb-Version);
# a proxy in front of one may, and HTTP/2 always does. HTTP header names are case-insensitive.
@pytest.mark.parametrize("header", ["X-Influxdb-Version", "x-influxdb-version", "X-INFLUXDB-VERSION"])
@pytest.mark.parametrize(("version", "api"), [("1.8.10", Api.V1), ("v2.8.0", Api.V2)], ids=["1.8", "2.8"])
def test_the_version_header_is_read_in_any_case(recording_server, header, version, api):
    """Regression: a 1.8 answering `x-influxdb-version` was taken for a 2.x and written through /api/v2/write."""
    recording_server.version_header, recording_server.version = header, version
    assert detect_api(recording_server.url, timeout_s=30) == (api, version)


def test_a_retry_after_in_lower_case_is_obeyed(recording_server):
    recording_server.answer = lambda n: (503, b'{"message":"busy"}') if n == 0 else (204, b"")
    recording_server.answer_headers = {"retry-after": "0"}
    notes: list[str] = []
    target = InfluxTarget(url=recording_server.url, bucket="b", org="o", token=TOKEN)
    settings_ = WriteSettings(connections=1, retry_interval_s=20, max_retry_delay_s=60, timeout_s=30)
    sink = InfluxSink(target, settings=settings_, notify=notes.append)

    sink.write_lines(movebank_lines(10))
    sink.close()

    assert sink.lines_confirmed == 10
    assert notes == [f"write to {recording_server.url} failed (HTTP 503 Service Unavailable: busy); retrying "
                     "(retry 1, up to 8 per request) in 0.0 s"]  # not the 20-40 s of the backoff


def test_a_slow_server_holds_back_the_writer(recording_server):
    """While requests are unanswered the queues fill and write_lines waits: memory stays flat."""
    recording_server.delay_s = 0.3
    target = InfluxTarget(url=recording_server.url, bucket="b", org="o", token=TOKEN)
    settings_ = WriteSettings(batch_lines=10, connections=2, max_pending_chunks=4)
    sink = InfluxSink(target, settings=settings_)
    handed: list[float] = []

    def writer() -> None:
        for block in range(20):
            sink.write_lines(movebank_lines(10, start=10 * block))
            handed.append(time.monotonic())

    thread = threading.Thread(target=writer)
    began = time.monotonic()
    thread.start()
    time.sleep(0.5)
    taken_early = len(handed)
    thread.join(timeout=30)
    sink.close()

    # In 0.5 s the server answers ~2 requests; the writer got no further than what the queues
    # and the requests in flight hold (2 connections x (1 queued + 1 in flight) + the ones answered).
    assert taken_early <= 2 * (settings_.queue_per_connection + 1) + 4
    assert sink.lines_confirmed == 200
    assert handed[-1] - began > 1.0


# --- a server that is not there --------------------------------------------------------------


def test_nobody_listening_gives_up_after_the_retries_with_the_counts():
    url = f"http://127.0.0.1:{free_loopback_port()}"  # free: nothing listens there
    notes: list[str] = []
    sink = InfluxSink(InfluxTarget(url=url, bucket="b", org="o", token=TOKEN),
                      settings=WriteSettings(batch_lines=2, connections=1, **QUICK_RETRIES), notify=notes.append)

    sink.write_lines(lines_array("m v=1 1", "m v=2 2", "m v=3 3"))
    with pytest.raises(InfluxWriteError) as raised:
        sink.close()

    message = str(raised.value)
    assert message.startswith(f"{url} (bucket b): a write request failed 3 times in ")
    assert "the last time with connection refused; csv2lp gave up. Is the server at" in message
    assert message.endswith("Stopped at the first failed request: 0 lines confirmed, 3 NOT confirmed "
                            "(2 in the request given up, 1 not sent after the stop).")
    assert notes and all(note.startswith(f"write to {url} failed (connection refused); retrying") for note in notes)
    assert sink.retries == 2
    assert TOKEN not in message and not any(TOKEN in note for note in notes)
    sink.close()  # reported once: a second close is quiet


# "8 retries or 5 minutes per request" (README) was up to max_retry_time + a whole timeout + a
# whole backoff: ~630 s with the defaults. These two use the same rules at a small scale, with
# the backoff made exact (base 1): the old code gave up at 12 s and 9 s, past the 10 s and 6 s.


def test_no_retry_starts_after_max_retry_time():
    url = f"http://127.0.0.1:{free_loopback_port()}"  # nobody listens: each try is refused at once
    settings_ = WriteSettings(connections=1, retry_interval_s=4, exponential_base=1, max_retry_delay_s=4,
                              max_retries=100, max_retry_time_s=10, timeout_s=2)
    sink = InfluxSink(InfluxTarget(url=url, bucket="b", org="o", token=TOKEN), settings=settings_)

    began = time.monotonic()
    sink.write_lines(movebank_lines(3))
    with pytest.raises(InfluxWriteError) as raised:
        sink.close()
    took = time.monotonic() - began

    # Tries at 0, 4 and 8 s; a fourth would start at 12 s, after the limit: given up at 8 s.
    assert 7.5 <= took < 10, took
    assert str(raised.value).startswith(f"{url} (bucket b): a write request failed 3 times in 8 s, the last time "
                                        "with connection refused; csv2lp gave up.")


@pytest.mark.influxdb2
def test_a_server_that_stops_answering_is_given_up_within_max_retry_time(private_influxdb2):
    """A real InfluxDB 2.8.0, frozen (SIGSTOP): the kernel still accepts connections, nothing answers."""
    server = private_influxdb2
    settings_ = WriteSettings(connections=1, retry_interval_s=1, exponential_base=1, max_retry_delay_s=1,
                              max_retries=100, max_retry_time_s=6, timeout_s=4)
    sink = InfluxSink(InfluxTarget(url=server.url, bucket=server.bucket, org=server.org, token=server.token),
                      settings=settings_)
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        sink.write_lines(movebank_lines(3))
        with pytest.raises(InfluxWriteError) as raised:
            sink.close()
        took = time.monotonic() - began
    finally:
        os.kill(server.process.pid, signal.SIGCONT)

    # Try 1 times out at 4 s; try 2 starts at 5 s with the 1 s left of the 6 as its timeout.
    assert 5.5 <= took < 7.5, took
    assert str(raised.value).startswith(f"{server.url} (bucket {server.bucket}): a write request failed 2 times "
                                        "in 6 s, the last time with no answer within the timeout; csv2lp gave up.")


def test_a_server_without_the_v2_write_path_is_named_as_such(recording_server):
    recording_server.answer = lambda n: (404, b"404 page not found\n")
    sink = InfluxSink(InfluxTarget(url=recording_server.url, bucket="b", org="o", token=TOKEN),
                      settings=WriteSettings(connections=1))

    sink.write_lines(movebank_lines(3))
    with pytest.raises(InfluxWriteError) as raised:
        sink.close()

    assert str(raised.value).startswith(
        f"{recording_server.url} (bucket b) refused a write request: HTTP 404 Not Found: 404 page not found. "
        f"{recording_server.url} has no /api/v2/write: an InfluxDB 1.6/1.7 whose /ping did not say its version "
        "(a proxy in between?) takes /write; check the URL. Stopped at the first failed request:")
