"""The Telegraf fixture against a real Telegraf v1.39.3, and the Telegraf facts csv2lp execd relies on.

Each test runs Telegraf for a few seconds. The child processes that stand in for
`csv2lp execd` are tiny Python scripts written into tmp_path, so these tests prove the
plumbing (execd -> Telegraf -> InfluxDB) and Telegraf's own behaviour before the
converter exists. What they measure is written up in the design note for execd.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from support.influxdb import InfluxDB1Server, free_loopback_port
from support.telegraf import (
    BUFFER_OVERFLOW_PATTERN,
    TelegrafProcess,
    agent_section,
    influxdb_output_section,
    toml_table,
    toml_value,
    wait_until,
)

pytestmark = pytest.mark.telegraf

PYTHON = sys.executable


def write_script(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source))
    return path


def execd_section(script: Path, *args: str, **settings: object) -> str:
    """[[inputs.execd]] running `python script args...` as a service input."""
    return toml_table(
        "[[inputs.execd]]",
        {"command": [PYTHON, str(script), *args], "signal": "none", "restart_delay": "1s", **settings},
    )


def file_output_section(path: Path) -> str:
    return toml_table("[[outputs.file]]", {"files": [str(path)], "data_format": "influx"})


def read_events(path: Path) -> dict[str, float]:
    """`<epoch seconds> <event>` lines written by a child script, as {event: time}."""
    events: dict[str, float] = {}
    for line in path.read_text().splitlines():
        stamp, event = line.split(" ", 1)
        events[event] = float(stamp)
    return events


# --- (a) the fixture itself: inputs.file -> outputs.file --------------------------------

# Canonical line protocol (tags sorted, fields in the order Telegraf keeps them) with
# every value type and the escapes that matter, so the round trip must be byte-exact.
ROUND_TRIP_LINES = [
    'weather,city=Paris,station=Orly temp=21.5,hum=40i,ok=true,note="light rain" 1700000000000000000',
    r"weather,city=New\ York,station=JFK\,T4 temp=-3.25,hum=81i,ok=false 1700000001000000000",
    r'weather,city=Oslo temp=3,note="says \"hi\" \\ bye" 1700000002000000000',
]


def test_file_input_to_file_output_keeps_every_line_exactly(start_telegraf, tmp_path):
    source = tmp_path / "in.lp"
    source.write_text("\n".join(ROUND_TRIP_LINES) + "\n")
    sink = tmp_path / "out.lp"
    config = "\n".join(
        [
            # inputs.file re-reads its file every interval: one gather, at start, only.
            agent_section(interval="1h"),
            toml_table("[[inputs.file]]", {"files": [str(source)], "data_format": "influx"}),
            file_output_section(sink),
        ]
    )
    telegraf = start_telegraf(config)
    telegraf.wait_for_log(r"\[outputs\.file\] Wrote batch of 3 metrics")
    assert telegraf.stop() == 0
    assert sink.read_text().splitlines() == ROUND_TRIP_LINES


def test_telegraf_that_cannot_load_its_config_fails_wait_for_log_at_once(start_telegraf):
    telegraf = start_telegraf("[agent]\n  interval = \n")
    began = time.monotonic()
    with pytest.raises(AssertionError, match=r"not running \(exit status 1\)"):
        telegraf.wait_for_log("Loaded inputs", timeout=15)
    assert time.monotonic() - began < 10


# --- (b) execd -> outputs.influxdb -> a real InfluxDB ------------------------------------

PRINT_THEN_WAIT_FOR_EOF = """\
    import os, sys, time
    sys.stdout.write(
        "probe,animal=F1,study=Fishers lat=42.75,lon=-73.5,event_id=101i,visible=true 1300000000000000000\\n"
        "probe,animal=F1,study=Fishers lat=42.76,lon=-73.51,event_id=102i,visible=true 1300000060000000000\\n"
        "probe,animal=M2,study=Fishers lat=42.8,event_id=103i,visible=false 1300000000000000000\\n"
    )
    sys.stdout.flush()  # a pipe is block-buffered: without this Telegraf sees nothing
    sys.stderr.write("I! printed 3 lines, waiting for stdin EOF\\n")
    sys.stderr.flush()
    sys.stdin.buffer.read()
    sys.stderr.write("I! stdin EOF, bye\\n")
    sys.stderr.flush()
    # Hang up before exiting, as csv2lp execd does: Telegraf's readers then end on EOF. A child
    # that just exits races Go's Wait(), which closes the pipes ("read |0: file already closed").
    time.sleep(0.3)
    os.close(1)
    os.close(2)
    time.sleep(0.05)
"""


@pytest.mark.influxdb
def test_execd_lines_reach_influxdb(telegraf_to_influxdb, influxdb: InfluxDB1Server, influx_db, tmp_path):
    script = write_script(tmp_path, "emit.py", PRINT_THEN_WAIT_FOR_EOF)
    telegraf = telegraf_to_influxdb(execd_section(script))
    telegraf.wait_for_log(r"I! \[inputs\.execd\] printed 3 lines")
    telegraf.wait_for_log(r"\[outputs\.influxdb\] Wrote batch of 3 metrics")

    points = influxdb.points("probe", influx_db)
    assert points == [
        {"time": 1300000000000000000, "animal": "F1", "study": "Fishers",
         "lat": 42.75, "lon": -73.5, "event_id": 101, "visible": True},
        {"time": 1300000000000000000, "animal": "M2", "study": "Fishers",
         "lat": 42.8, "event_id": 103, "visible": False},
        {"time": 1300000060000000000, "animal": "F1", "study": "Fishers",
         "lat": 42.76, "lon": -73.51, "event_id": 102, "visible": True},
    ]  # fmt: skip
    assert influxdb.field_types("probe", influx_db) == {
        "event_id": "integer", "lat": "float", "lon": "float", "visible": "boolean",
    }  # fmt: skip

    # Telegraf closes the child's stdin at shutdown; a child that exits on EOF stops it fast.
    assert telegraf.stop() == 0
    assert telegraf.last_stop_seconds < 4
    assert "I! [inputs.execd] stdin EOF, bye" in telegraf.log_text()


STDERR_LEVELS = """\
    import sys
    sys.stderr.write("E! an error\\nW! a warning\\nI! some info\\nD! a detail\\nno prefix at all\\n")
    sys.stderr.flush()
    sys.stdin.buffer.read()
"""


def test_execd_stderr_prefix_chooses_the_log_level(start_telegraf, tmp_path):
    script = write_script(tmp_path, "levels.py", STDERR_LEVELS)
    telegraf = start_telegraf(
        "\n".join([agent_section(), execd_section(script), file_output_section(tmp_path / "out.lp")])
    )
    telegraf.wait_for_log(r"\[inputs\.execd\] stderr:")
    log = telegraf.log_text()
    assert re.search(r"E! \[inputs\.execd\] an error$", log, re.M)
    assert re.search(r"W! \[inputs\.execd\] a warning$", log, re.M)
    assert re.search(r"I! \[inputs\.execd\] some info$", log, re.M)
    assert re.search(r"D! \[inputs\.execd\] a detail$", log, re.M)
    # Anything without a prefix is logged as an error, quoted.
    assert re.search(r'E! \[inputs\.execd\] stderr: "no prefix at all"$', log, re.M)


# --- (c) Telegraf's behaviour the execd design must live with ----------------------------

BURST = """\
    import sys
    count = int(sys.argv[1])
    sys.stdout.write("".join(f"burst,src=execd value={i}i {1700000000000000000 + i}\\n" for i in range(count)))
    sys.stdout.flush()
    sys.stdin.buffer.read()
"""


def closed_loopback_port() -> int:
    """A loopback port nothing listens on (connect() is refused at once)."""
    port = free_loopback_port()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return port


def test_buffer_overflow_log_line_when_output_is_down(start_telegraf, tmp_path):
    """A burst larger than metric_buffer_limit with the output down loses the oldest metrics."""
    script = write_script(tmp_path, "burst.py", BURST)
    dead_url = f"http://127.0.0.1:{closed_loopback_port()}"
    config = "\n".join(
        [
            agent_section(metric_buffer_limit=100, metric_batch_size=10),
            execd_section(script, "1000"),
            influxdb_output_section(dead_url, "nowhere", timeout="1s"),
        ]
    )
    telegraf = start_telegraf(config)
    telegraf.wait_for_log(BUFFER_OVERFLOW_PATTERN, timeout=60)
    # The count is logged at each write attempt (one per flush while the output is
    # down): let two more flushes pass, then add up every report.
    since = telegraf.log_size()
    for _ in range(2):
        since = telegraf.wait_for_log(r"Buffer fullness: 100 / 100 metrics", timeout=5, since=since).end()
    reports = [int(n) for n in re.findall(BUFFER_OVERFLOW_PATTERN, telegraf.log_text())]
    # 1000 in, 100 kept; Telegraf's own count has come out 10 short of 900 (a batch).
    assert 850 <= sum(reports) <= 900, reports
    assert "connect: connection refused" in telegraf.log_text()


@pytest.mark.influxdb
def test_buffer_within_limit_logs_no_overflow(telegraf_to_influxdb, influxdb, influx_db, tmp_path):
    """The control for the test above: the same burst with room in the buffer arrives whole."""
    script = write_script(tmp_path, "burst.py", BURST)
    telegraf = telegraf_to_influxdb(
        execd_section(script, "1000"), agent={"metric_buffer_limit": 2000, "metric_batch_size": 500}
    )
    wait_until(
        lambda: len(influxdb.points("burst", influx_db)) == 1000, timeout=15, what="1000 points in InfluxDB"
    )
    assert telegraf.stop() == 0
    assert not re.search(BUFFER_OVERFLOW_PATTERN, telegraf.log_text())


SHUTDOWN_WITNESS = """\
    import signal, sys, time
    events = open(sys.argv[1], "a", buffering=1)
    mode = sys.argv[2]

    def note(event):
        events.write(f"{time.time():.6f} {event}\\n")

    def on_sigterm(signum, frame):
        note("SIGTERM")
        if mode == "exit-on-sigterm":
            sys.exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    note("started")
    sys.stderr.write("I! witness ready\\n")
    sys.stderr.flush()
    sys.stdin.buffer.read()
    note("stdin EOF")
    if mode == "exit-on-eof":
        sys.exit(0)
    while True:  # ignore EOF: wait for Telegraf's SIGTERM, and maybe its SIGKILL
        time.sleep(0.05)
"""


def run_shutdown_witness(start_telegraf, tmp_path: Path, mode: str) -> tuple[TelegrafProcess, dict[str, float]]:
    script = write_script(tmp_path, "witness.py", SHUTDOWN_WITNESS)
    events_path = tmp_path / f"events-{mode}.txt"
    telegraf = start_telegraf(
        "\n".join(
            [agent_section(), execd_section(script, str(events_path), mode), file_output_section(tmp_path / "o.lp")]
        ),
        name=mode,
    )
    telegraf.wait_for_log(r"I! \[inputs\.execd\] witness ready")
    assert telegraf.stop(timeout=20) == 0
    return telegraf, read_events(events_path)


def test_shutdown_closes_execd_stdin_at_once(start_telegraf, tmp_path):
    telegraf, events = run_shutdown_witness(start_telegraf, tmp_path, "exit-on-eof")
    assert -0.005 <= events["stdin EOF"] - telegraf.last_sigterm_at < 1.0
    assert "SIGTERM" not in events
    assert telegraf.last_stop_seconds < 4


@pytest.mark.slow
def test_shutdown_sends_sigterm_5s_after_stdin_eof_then_sigkill_5s_later(start_telegraf, tmp_path):
    telegraf, events = run_shutdown_witness(start_telegraf, tmp_path, "ignore-everything")
    assert -0.005 <= events["stdin EOF"] - telegraf.last_sigterm_at < 1.0
    assert 4.5 <= events["SIGTERM"] - events["stdin EOF"] <= 6.0
    # The child ignored SIGTERM too: Telegraf SIGKILLs it 5 s later and then exits.
    assert 9.5 <= telegraf.last_stop_seconds <= 13.0
    assert "I! [inputs.execd] Process " in telegraf.log_text()


# A child that exits right after its last write can lose the tail still in the pipe:
# Go's exec.Cmd.Wait closes Telegraf's read end once the child is gone ("read |0: file
# already closed"). Measured: 100,000 lines written, 98,700-99,300 received. Waiting
# until the pipe is empty (FIONREAD on our end of it reads 0) before exiting fixes it.
DRAIN_THEN_EXIT = """\
    import fcntl, os, struct, sys, termios, time
    count = int(sys.argv[1])
    sys.stdin.buffer.read()  # emit at shutdown, the worst moment
    sys.stdout.buffer.write(
        "".join(f"tail,src=execd value={i}i {1700000000000000000 + i}\\n" for i in range(count)).encode()
    )
    sys.stdout.flush()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        unread = struct.unpack("i", fcntl.ioctl(1, termios.FIONREAD, b"\\0\\0\\0\\0"))[0]
        if unread == 0:
            break
        time.sleep(0.005)
    sys.stderr.write(f"I! pipe drained, {unread} bytes unread\\n")
    sys.stderr.flush()
    os._exit(0)
"""


def test_child_that_waits_for_its_stdout_pipe_to_drain_loses_no_line_at_exit(start_telegraf, tmp_path):
    script = write_script(tmp_path, "drain.py", DRAIN_THEN_EXIT)
    sink = tmp_path / "out.lp"
    telegraf = start_telegraf(
        "\n".join(
            [
                agent_section(metric_buffer_limit=200_000, metric_batch_size=5000, debug=False),
                execd_section(script, "100000"),
                file_output_section(sink),
            ]
        )
    )
    telegraf.wait_for_log(r"Starting process")
    assert telegraf.stop() == 0
    assert sum(1 for _ in sink.open()) == 100_000


HALF_LINE_THEN_KILL = """\
    import os, signal, sys, time
    sys.stdout.buffer.write(b"half,src=execd v=1i 1700000000000000000\\nhalf,src=execd v=2i 17000")
    sys.stdout.flush()
    # The output ends mid-line here, as when a kill lands in the middle of a write. Closing stdout
    # before dying makes the reader see that end as EOF: at a bare kill, Telegraf's Cmd.Wait also
    # closes its end of the pipe, and when that close wins the race (it does on a loaded machine)
    # the reader stops with "file already closed" and drops the tail instead of misreading it.
    os.close(1)
    time.sleep(float(sys.argv[1]))
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_half_line_left_in_the_pipe_by_a_killed_child_becomes_a_wrong_point(start_telegraf, tmp_path):
    """Why csv2lp execd writes whole lines in writes of at most PIPE_BUF bytes (atomic on a pipe):
    Telegraf parses the cut-off tail at EOF as a point, here at 17000 ns instead of 1.7e18."""
    script = write_script(tmp_path, "half.py", HALF_LINE_THEN_KILL)
    sink = tmp_path / "out.lp"
    telegraf = start_telegraf(
        "\n".join([agent_section(), execd_section(script, "120", restart_delay="1h"), file_output_section(sink)])
    )
    # Both points are in the file before the child dies: the tail was parsed at EOF, not at the kill.
    wait_until(lambda: sink.exists() and len(sink.read_text().splitlines()) == 2, 60, "2 lines in the file output")
    assert sink.read_text().splitlines() == [
        "half,src=execd v=1i 1700000000000000000",
        "half,src=execd v=2i 17000",
    ]
    assert "exited" not in telegraf.log_text(), "the child died before Telegraf wrote what it had read"
    telegraf.stop()


LONG_LINES = """\
    import sys
    size = int(sys.argv[1])
    sys.stdout.write(f'long,src=execd s="{"x" * size}",v=1i 1700000000000000000\\nshort,src=execd v=2i 1700000000000000001\\n')
    sys.stdout.flush()
    sys.stdin.buffer.read()
"""


def test_stdout_lines_longer_than_buffer_size_still_arrive(start_telegraf, tmp_path):
    """With data_format "influx" execd uses a streaming parser that grows: buffer_size is not a line limit."""
    script = write_script(tmp_path, "long.py", LONG_LINES)
    sink = tmp_path / "out.lp"
    telegraf = start_telegraf(
        "\n".join([agent_section(), execd_section(script, "200000"), file_output_section(sink)])
    )
    telegraf.wait_for_log(r"\[outputs\.file\] Wrote batch of 2 metrics")
    telegraf.stop()
    lengths = [len(line) for line in sink.read_text().splitlines()]
    assert lengths == [200_044, 40]


LONG_STDERR = """\
    import sys
    sys.stderr.write("W! " + "y" * 70000 + "\\nI! the line after\\n")
    sys.stderr.flush()
    sys.stdin.buffer.read()
"""


def test_stderr_line_over_64_kib_stops_telegraf_reading_stderr(start_telegraf, tmp_path):
    """bufio.Scanner's 64 KiB token limit: execd must keep every log line short."""
    script = write_script(tmp_path, "long_stderr.py", LONG_STDERR)
    telegraf = start_telegraf(
        "\n".join([agent_section(), execd_section(script), file_output_section(tmp_path / "o.lp")])
    )
    telegraf.wait_for_log(r"E! \[inputs\.execd\] Error in plugin: error reading stderr: bufio\.Scanner: token too long")
    time.sleep(0.5)
    assert "the line after" not in telegraf.log_text()


# --- the shipped files in telegraf/ -------------------------------------------------------

TELEGRAF_DIR = Path(__file__).resolve().parents[1] / "telegraf"
SHIPPED_ENV = {
    "INFLUX_URL": "http://127.0.0.1:1",
    "INFLUX_TOKEN": "test-token",
    "INFLUX_ORG": "test-org",
    "INFLUX_BUCKET": "test-bucket",
}


def test_shipped_telegraf_conf_passes_telegrafs_own_config_check(telegraf_bin):
    """`telegraf config check` rejects unknown settings, so a typo in the shipped file fails here."""
    result = subprocess.run(
        [str(telegraf_bin), "config", "check", "--config", str(TELEGRAF_DIR / "telegraf.conf")],
        env={"PATH": "/usr/bin:/bin", **SHIPPED_ENV},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "E!" not in result.stderr, result.stderr


def test_shipped_telegraf_conf_refuses_to_start_without_its_variables(telegraf_bin):
    """`${NAME:?message}`: a missing variable stops Telegraf at once, instead of sending "${NAME}"."""
    missing = {key: value for key, value in SHIPPED_ENV.items() if key != "INFLUX_BUCKET"}
    result = subprocess.run(
        [str(telegraf_bin), "config", "check", "--config", str(TELEGRAF_DIR / "telegraf.conf")],
        env={"PATH": "/usr/bin:/bin", **missing},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "required variable INFLUX_BUCKET is missing a value: set INFLUX_BUCKET to the bucket" in result.stderr


def readme_config_blocks() -> dict[str, str]:
    """The ```toml @<file> blocks of telegraf/README.md (Telegraf's own README convention)."""
    text = (TELEGRAF_DIR / "README.md").read_text()
    return dict(re.findall(r"^```toml @(\S+)\n(.*?)^```$", text, re.M | re.S))


def test_readme_config_blocks_equal_the_shipped_files():
    blocks = readme_config_blocks()
    assert sorted(blocks) == ["csv2lp.toml", "telegraf.conf"]
    for name, block in blocks.items():
        assert block == (TELEGRAF_DIR / name).read_text(), f"README block @{name} differs from telegraf/{name}"


def test_pacing_settings_in_csv2lp_toml_copy_telegrafs_agent_settings():
    agent = tomllib.loads((TELEGRAF_DIR / "telegraf.conf").read_text())["agent"]
    pacing = tomllib.loads((TELEGRAF_DIR / "csv2lp.toml").read_text())["pacing"]
    assert pacing["metric_batch_size"] == agent["metric_batch_size"]
    assert pacing["metric_buffer_limit"] == agent["metric_buffer_limit"]
    assert f"{pacing['flush_interval_seconds']}s" == agent["flush_interval"]
    # The numbers the comments and the README quote follow from the formula.
    rate = (pacing["metric_buffer_limit"] - 2 * pacing["metric_batch_size"]) / (
        pacing["outage_seconds"] + pacing["flush_interval_seconds"]
    )
    assert rate == 2000
    assert min(pacing["metric_batch_size"], rate / 2) == 1000


def readme_pacing_table() -> list[list[str]]:
    """The rows of the table under "## Pacing" in telegraf/README.md, cells without markup."""
    text = (TELEGRAF_DIR / "README.md").read_text()
    section = text[text.index("## Pacing") :]
    rows = re.findall(r"^\| (\**[\d,]+.*)\|$", section, re.M)
    return [[cell.strip().strip("*") for cell in row.split("|")] for row in rows]


def test_readme_pacing_table_follows_from_the_formula_and_marks_the_shipped_row():
    from converter.execd.pacing import outage_ridden_out

    agent = tomllib.loads((TELEGRAF_DIR / "telegraf.conf").read_text())["agent"]
    batch, flush = agent["metric_batch_size"], float(agent["flush_interval"].rstrip("s"))
    rows = readme_pacing_table()
    assert len(rows) >= 3
    shipped = []
    for limit, rate, outage, duration, memory in rows:
        limit_n, rate_n = int(limit.replace(",", "")), int(rate.replace(",", ""))
        seconds = outage_ridden_out(metric_batch_size=batch, metric_buffer_limit=limit_n,
                                    flush_interval_seconds=flush, lines_per_second=rate_n)
        assert outage == f"{int(seconds)} s", (limit, rate)  # rounded down: the safe side
        minutes, rest = divmod(round(1_000_000 / rate_n), 60)
        assert duration == f"{minutes} min {rest} s", (limit, rate)
        assert memory == f"~{round(limit_n * 2.1 / 1000 / 10) * 10} MB", (limit, memory)  # 2.1 KiB a metric
        if limit_n == agent["metric_buffer_limit"]:
            shipped.append(rate_n)
    pacing = tomllib.loads((TELEGRAF_DIR / "csv2lp.toml").read_text())["pacing"]
    expected = (pacing["metric_buffer_limit"] - 2 * batch) / (pacing["outage_seconds"] + pacing["flush_interval_seconds"])
    assert expected in shipped
    assert "| **" in (TELEGRAF_DIR / "README.md").read_text()  # the shipped row stands out


@pytest.mark.slow
def test_shipped_telegraf_conf_writes_execd_lines_through_influxdb_v2_output(start_telegraf, tmp_path):
    """The shipped config, its command swapped for a stand-in, against a real v2 write endpoint.

    A second Telegraf serves /api/v2/write (inputs.influxdb_v2_listener, checking the
    token) and writes what it gets to a file, with the bucket as a tag.
    """
    port = free_loopback_port()
    received = tmp_path / "received.lp"
    listener = start_telegraf(
        "\n".join(
            [
                agent_section(),
                toml_table(
                    "[[inputs.influxdb_v2_listener]]",
                    {"service_address": f"127.0.0.1:{port}", "token": "test-token", "bucket_tag": "bucket"},
                ),
                file_output_section(received),
            ]
        ),
        name="v2-listener",
    )
    listener.wait_for_log(r"Started HTTP listener service on")

    script = write_script(tmp_path, "emit.py", PRINT_THEN_WAIT_FOR_EOF)
    shipped = (TELEGRAF_DIR / "telegraf.conf").read_text()
    command_line = '  command = ["csv2lp", "execd", "--config", "/etc/csv2lp/csv2lp.toml"]\n'
    assert command_line in shipped
    config = shipped.replace(command_line, f"  command = {toml_value([PYTHON, str(script)])}\n")
    telegraf = start_telegraf(config, env={**SHIPPED_ENV, "INFLUX_URL": f"http://127.0.0.1:{port}"}, name="shipped")

    # The shipped flush_interval is 5 s and 3 lines are far below a batch: wait for that flush.
    wait_until(lambda: received.exists() and len(received.read_text().splitlines()) == 3, 15, "3 relayed lines")
    assert sorted(received.read_text().splitlines()) == [
        "probe,animal=F1,bucket=test-bucket,study=Fishers lat=42.75,lon=-73.5,event_id=101i,visible=true 1300000000000000000",
        "probe,animal=F1,bucket=test-bucket,study=Fishers lat=42.76,lon=-73.51,event_id=102i,visible=true 1300000060000000000",
        "probe,animal=M2,bucket=test-bucket,study=Fishers lat=42.8,event_id=103i,visible=false 1300000000000000000",
    ]
    assert telegraf.stop() == 0
    assert not re.search(r"^\S+ E! ", telegraf.log_text(), re.M), telegraf.log_tail()
