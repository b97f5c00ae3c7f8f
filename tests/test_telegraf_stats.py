"""converter.execd.telegraf_stats: Telegraf's buffer numbers as its prometheus_client output serves them."""

from __future__ import annotations

import textwrap
import time

import pytest

from converter.execd.telegraf_stats import FlowRefused, OutputBuffer, StatsClient, StatsUnavailable, parse, watched_outputs
from support.influxdb import free_loopback_port

# Served by Telegraf 1.39.3 with the route of telegraf/telegraf.conf (two outputs: the route
# itself and a file output aliased "sink"); other fields and HELP lines cut for length.
PAGE = textwrap.dedent("""\
    # HELP internal_write_buffer_limit Telegraf collected metric
    # TYPE internal_write_buffer_limit untyped
    internal_write_buffer_limit{alias="",csv2lp="flow",output="prometheus_client",version="1.39.3"} 100 1796159935751
    internal_write_buffer_limit{alias="sink",csv2lp="flow",output="file",version="1.39.3"} 10000 1796159935751
    internal_write_buffer_size{alias="",csv2lp="flow",output="prometheus_client",version="1.39.3"} 0 1796159935751
    internal_write_buffer_size{alias="sink",csv2lp="flow",output="file",version="1.39.3"} 4213 1796159935751
    internal_write_metrics_added{alias="sink",csv2lp="flow",output="file",version="1.39.3"} 90000 1796159935751
    internal_write_metrics_dropped{alias="",csv2lp="flow",output="prometheus_client",version="1.39.3"} 0 1796159935751
    internal_write_metrics_dropped{alias="sink",csv2lp="flow",output="file",version="1.39.3"} 3 1796159935751
    internal_write_metrics_written{alias="",csv2lp="flow",output="prometheus_client",version="1.39.3"} 18 1796159935751
    internal_write_metrics_written{alias="sink",csv2lp="flow",output="file",version="1.39.3"} 85787 1796159935751
    """)
STAMP = 1796159935.751


def test_each_output_by_alias_or_plugin_name_with_the_agents_stamp():
    page = parse(PAGE, fetched_at=STAMP + 0.2)
    assert page.outputs == {
        "prometheus_client": OutputBuffer("prometheus_client", "prometheus_client", 0, 100, 18, 0, STAMP),
        "sink": OutputBuffer("sink", "file", 4213, 10000, 85787, 3, STAMP, metrics_added=90000),
    }
    assert page.problems == {} and page.marks == {} and not page.per_instance


def test_a_stamp_later_than_the_fetch_counts_as_the_fetch_time():
    """A clock of Telegraf's ahead of ours must not make a number look newer than it can be."""
    page = parse(PAGE, fetched_at=STAMP - 5)
    assert {b.at for b in page.outputs.values()} == {STAMP - 5}


def test_numbers_without_the_agents_stamp_are_not_used():
    unstamped = "\n".join(line.rsplit(" ", 1)[0] if line.startswith("internal") else line for line in PAGE.splitlines())
    page = parse(unstamped, fetched_at=STAMP)
    assert page.outputs == {} and "no timestamp" in page.problems["sink"]


def test_an_output_without_its_limit_is_left_out_and_said_why():
    page = parse("\n".join(line for line in PAGE.splitlines() if not ("buffer_limit" in line and "sink" in line)),
                 fetched_at=STAMP)
    assert set(page.outputs) == {"prometheus_client"} and page.problems == {"sink": "no buffer_limit"}


def with_value(field: str, value: str) -> str:
    """PAGE with the sink's `field` replaced by `value`."""
    return "\n".join(f"{line.rsplit(' ', 2)[0]} {value} {line.rsplit(' ', 1)[1]}"
                     if line.startswith(f"internal_write_{field}{{alias=\"sink\"") else line
                     for line in PAGE.splitlines())


@pytest.mark.parametrize("field, value, problem", [
    ("buffer_size", "NaN", "buffer_size = NaN is not a count"),
    ("buffer_size", "+Inf", "buffer_size = +Inf is not a count"),
    ("buffer_size", "-Inf", "buffer_size = -Inf is not a count"),
    ("buffer_size", "-3", "buffer_size = -3 is not a count"),
    ("buffer_size", "12.5", "buffer_size = 12.5 is not a count"),
    ("buffer_size", "lots", "buffer_size = 'lots' is not a number"),
    ("metrics_written", "1e300", "metrics_written = 1e300 is not a count"),
    ("buffer_limit", "1e30", "buffer_limit = 1e30 is not a count"),
    ("buffer_limit", "1e9", "buffer_limit = 1000000000 is not a buffer Telegraf can have"),
    ("buffer_limit", "0", "buffer_limit = 0 is not a buffer Telegraf can have"),
])
def test_a_value_that_is_not_a_plain_count_makes_that_output_unusable_and_says_which(field, value, problem):
    page = parse(with_value(field, value), fetched_at=STAMP)
    assert "sink" not in page.outputs and page.problems["sink"] == problem
    assert set(page.outputs) == {"prometheus_client"}  # the others are still read


def test_two_outputs_of_one_plugin_without_alias_are_told_apart_or_refused():
    two = PAGE.replace('alias="sink",', 'alias="",') + PAGE.replace('alias="sink",', 'alias="",').replace(
        'output="file",', 'output="file",_id="b",').replace('4213', '90000')
    page = parse(two.replace('output="file",version', 'output="file",_id="a",version', 9), fetched_at=STAMP)
    assert page.duplicates == ("file",) and "file" not in page.outputs
    assert page.problems["file"] == "2 outputs are called file"
    with pytest.raises(FlowRefused, match=r'give each an alias \(alias = "file_a", ...\)'):
        watched_outputs(page, (), "http://127.0.0.1:1/metrics")


def test_a_mark_of_a_writer_is_read_and_a_bad_one_ignored():
    marks = ('csv2lp_delivery_lines{csv2lp="flow",writer="w1"} 7 1796159935751\n'
             'csv2lp_delivery_lines{csv2lp="flow",writer="w2"} NaN 1796159935751\n')
    assert parse(PAGE + marks, fetched_at=STAMP).marks == {"w1": 7}


def test_the_client_refuses_what_is_not_an_http_address():
    with pytest.raises(ValueError, match="http://HOST:PORT/PATH"):
        StatsClient("udp://127.0.0.1:9274")


def test_nothing_listening_is_unavailable_with_the_address():
    port = free_loopback_port()
    client = StatsClient(f"http://127.0.0.1:{port}/metrics", timeout=1.0)
    with pytest.raises(StatsUnavailable, match=f"127.0.0.1:{port}"):
        client.fetch()


@pytest.mark.telegraf
def test_a_real_telegraf_serves_fresh_numbers_of_every_output(start_telegraf):
    port = free_loopback_port()
    telegraf = start_telegraf(f"""
        [agent]
          interval = "10s"
          omit_hostname = true
        [[inputs.internal]]
          interval = "250ms"
          collect_memstats = false
          namepass = ["internal_write"]
          [inputs.internal.tags]
            csv2lp = "flow"
        [[outputs.prometheus_client]]
          listen = "127.0.0.1:{port}"
          collectors_exclude = ["gocollector", "process"]
          export_timestamp = true
          metric_batch_size = 1
          [outputs.prometheus_client.tagpass]
            csv2lp = ["flow"]
        [[outputs.file]]
          alias = "sink"
          files = ["/dev/null"]
          metric_buffer_limit = 1234
          [outputs.file.tagdrop]
            csv2lp = ["flow"]
        """)
    telegraf.wait_for_log(r"Loaded outputs")
    client = StatsClient(f"http://127.0.0.1:{port}/metrics")
    deadline = time.monotonic() + 15
    while True:
        try:
            buffers = client.fetch().outputs
            break
        except StatsUnavailable:
            assert time.monotonic() < deadline, telegraf.log_tail()
            time.sleep(0.1)
    first = buffers["sink"]
    assert (first.plugin, first.buffer_limit, first.buffer_size, first.metrics_dropped) == ("file", 1234, 0, 0)
    time.sleep(0.6)
    later = client.fetch().outputs["sink"]
    # a report every 250 ms, stamped by the agent: newer, and never more than a second old
    assert first.at < later.at <= time.time() and time.time() - later.at < 1.0
    client.close()
