"""The direct-write sink (converter/sinks/influxdb.py) without a database: how lines are cut
into request bodies, where the token comes from, the CLI's rules for the write flags,
csv2lp without influxdb-client, what goes on the wire, and a server that is not there.

Delivery into a real database, retries, the outage and the bad token are proven in
tests/test_v2_write_path.py (real Telegraf v2 listener relaying into real InfluxDB 1.x).
"""

from __future__ import annotations

import gzip
import http.server
import os
import subprocess
import sys
import textwrap
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from converter import cli
from converter.mapping import Precision
from converter.sinks.file import lines_buffer
from converter.sinks.influxdb import (
    InfluxSink,
    InfluxTarget,
    InfluxWriteError,
    WriteSettings,
    line_chunks,
    read_token,
)
from support.data import REPO, SAMPLE
from support.influxdb import free_loopback_port

TOKEN = "tok-3f9a1c-not-a-real-secret"
CLI_TIMEOUT_S = 60


def lines_array(*lines: str) -> pa.Array:
    return pa.array([line + "\n" for line in lines], type=pa.string())


def run_cli(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli.main, list(args), env=env)


# --- cutting lines into request bodies ---------------------------------------------------


def test_chunks_hold_whole_lines_and_no_trailing_newline():
    lines = lines_array(*(f"m v={i}" for i in range(10)))

    chunks = list(line_chunks(lines, batch_lines=3, max_bytes=1 << 20))

    assert [count for count, _ in chunks] == [3, 3, 3, 1]
    assert [body for _, body in chunks] == [
        b"m v=0\nm v=1\nm v=2", b"m v=3\nm v=4\nm v=5", b"m v=6\nm v=7\nm v=8", b"m v=9",
    ]


def test_chunks_of_a_sliced_array_start_at_the_slice():
    lines = lines_array("a v=1", "b v=2", "c v=3", "d v=4").slice(1, 2)

    assert list(line_chunks(lines, batch_lines=10, max_bytes=1 << 20)) == [(2, b"b v=2\nc v=3")]


def test_chunks_are_cut_at_max_bytes_and_a_longer_line_goes_alone():
    long_line = "m s=\"" + "x" * 100 + "\""
    lines = lines_array("m v=1", "m v=2", long_line, "m v=3")

    chunks = list(line_chunks(lines, batch_lines=100, max_bytes=12))

    # "m v=1\nm v=2\n" is 12 bytes: fits; the long line is alone; the last one follows.
    assert [count for count, _ in chunks] == [2, 1, 1]
    assert chunks[1][1] == long_line.encode()


def test_no_chunks_for_no_lines():
    assert list(line_chunks(pa.array([], type=pa.string()), batch_lines=5, max_bytes=100)) == []


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.text(alphabet="abc =,\"é", min_size=1, max_size=30), min_size=0, max_size=60),
    batch_lines=st.integers(1, 20),
    max_bytes=st.integers(1, 200),
    start=st.integers(0, 5),
)
def test_chunks_joined_as_the_client_joins_them_give_back_every_line(lines, batch_lines, max_bytes, start):
    array = lines_array(*lines).slice(min(start, len(lines)))
    expected = lines_buffer(array).to_pybytes()

    chunks = list(line_chunks(array, batch_lines=batch_lines, max_bytes=max_bytes))

    # influxdb-client's batching joins records with b"\n" (write_api._body_reduce); one
    # chunk per request here, and the body must not hold an empty line.
    assert b"".join(body + b"\n" for _, body in chunks) == expected
    assert sum(count for count, _ in chunks) == len(array)
    for count, body in chunks:
        assert 1 <= count <= batch_lines
        assert body.count(b"\n") + 1 == count
        assert b"\n\n" not in body and not body.endswith(b"\n")
        assert count == 1 or len(body) + 1 <= max_bytes


# --- the token -------------------------------------------------------------------------------


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


def test_target_repr_hides_the_token():
    target = InfluxTarget(url="http://127.0.0.1:1", bucket="b", org="o", token=TOKEN)
    assert TOKEN not in repr(target)


# --- the CLI's rules for the write flags ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "x.lp", "--influx-url", "http://127.0.0.1:1", "--bucket", "b"],
         "-o/--output and --influx-url cannot be combined"),
        (["--bucket", "b", "--org", "o"], "--bucket, --org only go with --influx-url."),
        (["--create-bucket"], "--create-bucket only go with --influx-url."),
        (["--batch-lines", "10"], "--batch-lines only go with --influx-url."),
        (["--influx-url", "http://127.0.0.1:1"], "--influx-url needs --bucket"),
    ],
    ids=["with-output", "bucket-alone", "create-bucket-alone", "batch-lines-alone", "no-bucket"],
)
def test_write_flag_misuse_is_a_usage_error(args, message):
    result = run_cli("convert", str(SAMPLE), "--preset", "movebank", *args)

    assert result.exit_code == 2, result.output
    assert message in result.output


def test_there_is_no_token_option_on_the_command_line():
    result = run_cli("convert", str(SAMPLE), "--influx-url", "http://127.0.0.1:1", "--bucket", "b", "--token", TOKEN)

    assert result.exit_code == 2
    assert "No such option '--token'" in result.output


def test_no_token_is_an_error_before_anything_is_read():
    result = run_cli("convert", str(SAMPLE), "--preset", "movebank", "--influx-url", "http://127.0.0.1:1",
                     "--bucket", "b", env={"INFLUX_TOKEN": ""})

    assert result.exit_code == 1
    assert result.output.startswith("csv2lp: error: no API token: set INFLUX_TOKEN, or give --token-file FILE")
    assert "rows read" not in result.output


def test_url_without_scheme_is_refused():
    result = run_cli("convert", str(SAMPLE), "--preset", "movebank", "--influx-url", "localhost:8086",
                     "--bucket", "b", env={"INFLUX_TOKEN": TOKEN})

    assert result.exit_code == 1
    assert "--influx-url 'localhost:8086': give the server's base URL, e.g. http://localhost:8086." in result.output


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
        loaded = sorted(m for m in sys.modules if m.startswith(("influxdb_client", "converter.sinks.influxdb")))
        sys.stderr.write("\\nloaded: %s\\n" % loaded)
    """
)


def run_without_client(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_CLIENT, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_S, env={**os.environ, **(env or {})})


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


def test_influx_url_without_influxdb_client_says_how_to_install_it():
    done = run_without_client("convert", str(SAMPLE), "--preset", "movebank", "--influx-url", "http://127.0.0.1:1",
                              "--bucket", "b", env={"INFLUX_TOKEN": TOKEN})

    assert done.returncode == 1
    assert done.stderr.startswith(
        "csv2lp: error: --influx-url needs the influxdb-client package: pip install 'csv2lp[influx]' "
        "(or pip install influxdb-client).\n"
    )


# --- what goes on the wire ------------------------------------------------------------------


@dataclass
class Recorded:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingServer:
    """A loopback HTTP server that answers 204 to every POST and keeps what it got.

    It shows the bytes the client sends; whether a real server takes them is the job of
    tests/test_v2_write_path.py.
    """

    url: str
    requests: list[Recorded] = field(default_factory=list)


@pytest.fixture
def recording_server() -> Iterator[RecordingServer]:
    port = free_loopback_port()
    recorder = RecordingServer(url=f"http://127.0.0.1:{port}")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            parsed = urllib.parse.urlparse(self.path)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            recorder.requests.append(Recorded(parsed.path, urllib.parse.parse_qs(parsed.query),
                                              dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

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


def test_one_gzip_request_per_chunk_with_the_lines_as_given(recording_server):
    lines = lines_array(*(f"movebank,individual=F{i % 2} lat={i}.5 {1_600_000_000_000 + i}" for i in range(5)))
    target = InfluxTarget(url=recording_server.url, bucket="tracks", org="lab", token=TOKEN)
    sink = InfluxSink(target, precision=Precision.MS, settings=WriteSettings(batch_lines=2))

    assert sink.write_lines(lines) == 5
    sink.close()

    bodies = [gzip.decompress(r.body) for r in recording_server.requests]
    assert b"\n".join(bodies) + b"\n" == lines_buffer(lines).to_pybytes()
    assert [body.count(b"\n") + 1 for body in bodies] == [2, 2, 1]
    for request in recording_server.requests:
        assert request.path == "/api/v2/write"
        assert request.query == {"org": ["lab"], "bucket": ["tracks"], "precision": ["ms"]}
        assert request.headers["Content-Encoding"] == "gzip"
        assert request.headers["Authorization"] == f"Token {TOKEN}"
    assert (sink.lines_sent, sink.lines_confirmed, sink.requests_confirmed, sink.retries) == (5, 5, 3, 0)
    assert sink.report_lines()[0].startswith(
        f"5 lines confirmed by {recording_server.url} (bucket tracks) in 3 request(s)")


# --- a server that is not there --------------------------------------------------------------


def test_nobody_listening_gives_up_after_the_retries_with_the_counts():
    url = f"http://127.0.0.1:{free_loopback_port()}"  # free: nothing listens there
    notes: list[str] = []
    quick = WriteSettings(batch_lines=2, retry_interval_s=0.05, max_retries=2, max_retry_delay_s=0.2,
                          max_retry_time_s=5, timeout_s=2)
    sink = InfluxSink(InfluxTarget(url=url, bucket="b", org="o", token=TOKEN), settings=quick, notify=notes.append)

    sink.write_lines(lines_array("m v=1", "m v=2", "m v=3"))
    with pytest.raises(InfluxWriteError) as raised:
        sink.close()

    message = str(raised.value)
    assert message.startswith(f"3 of the 3 lines written were NOT confirmed by {url} (bucket b) (0 were). First error")
    assert "connection refused" in message
    assert message.endswith(f"Is the server at {url} running and reachable?")
    # The first chunk was retried; the chunk queued behind it got one try once the first had failed.
    assert notes and all(note.startswith(f"write to {url} failed (connection refused); retrying") for note in notes)
    assert sink.retries == 2 and sink.requests_abandoned == 1
    assert TOKEN not in message and not any(TOKEN in note for note in notes)
    sink.close()  # reported once: a second close is quiet
