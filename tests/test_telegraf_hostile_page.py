"""A hostile metrics page never aborts a file: its numbers are "unavailable", the log says why,
and csv2lp holds to what the last good numbers allowed.

A real Telegraf and InfluxDB 2 with the shipped configs; only csv2lp's view of Telegraf's page
goes through support/lying_page.py, which, at the worst moment (InfluxDB down, the buffer at
the window, csv2lp waiting for room), answers NaN, +Inf, an absurd buffer limit, text, too
late, or not at all. Before issue 23, NaN and +Inf raised and the file went to error/ part
sent, a limit of 1e30 turned the bound off, and a vanished page was blamed on the output.
The true buffer is read from Telegraf's own page throughout.
"""

from __future__ import annotations

import json
import time

import pytest

from support.lying_page import LyingPage
from support.movebank_gen import generate
from support.stack import ShippedStack, count_per_series, expected_per_series, wait_for_count
from support.telegraf import wait_until

pytestmark = [pytest.mark.telegraf, pytest.mark.influxdb2]

ROWS = 60_000
WINDOW = 50_000  # max_buffer_fill 0.5 of the shipped metric_buffer_limit 100,000
HOLD_S = 4.0

# mode -> what csv2lp's log must say while that page is served
LIES = [
    ("nan", "buffer_size = NaN is not a count"),
    ("inf", "buffer_size = +Inf is not a count"),
    ("huge_limit", "buffer_limit = 1e+30 is not a count"),
    ("text", "buffer_size = 'lots' is not a number"),
    ("slow", "took more than 2 s to answer"),
    ("vanished", "Connection refused"),
]


@pytest.fixture
def lying_stack(telegraf_bin, private_influxdb2, tmp_path):
    page = LyingPage().start()
    s = ShippedStack(telegraf_bin, private_influxdb2, tmp_path / "stack", flow={"telegraf_metrics_url": page.url})
    page.target = s.metrics_url
    try:
        yield s.start(), page
    finally:
        s.close()
        page.close()
        if not private_influxdb2.running:
            private_influxdb2.start()


def test_every_kind_of_lying_page_holds_the_import_and_loses_nothing(lying_stack, tmp_path):
    s, page = lying_stack
    source = generate(ROWS, tmp_path / "big.csv", individuals=5, seed=71)
    s.server.stop()
    s.drop(source, "big.csv")

    def emitted() -> int:
        try:
            current = json.loads(s.state_file.read_text())["current"]
        except (OSError, ValueError, KeyError):
            return 0
        return current["emitted_through_line"] if current else 0

    def true_buffer() -> int:
        return int(s.internal_write()["influxdb_v2"]["buffer_size"])

    history: list[int] = []

    def stalled() -> bool:
        history.append(emitted())
        return len(history) > 12 and history[-1] == history[-13] and true_buffer() >= WINDOW * 0.8

    wait_until(stalled, 120, f"csv2lp to wait at the window (emitted {history[-1:]})", poll=0.25)
    pids = s.execd_pids()
    peak = true_buffer()
    for mode, said in LIES:
        log_before = len(s.telegraf.log_text())
        if mode == "vanished":
            page.vanish()
        else:
            page.mode = mode
        began = time.monotonic()
        while time.monotonic() - began < HOLD_S + (4 if mode == "slow" else 0):
            peak = max(peak, true_buffer())
            time.sleep(0.25)
        log = s.telegraf.log_text()[log_before:]
        assert said in log, f"{mode}: csv2lp's log does not say {said!r}:\n{log[-3000:]}"
        assert "not draining" not in log, f"{mode}: a page problem blamed on the output:\n{log[-3000:]}"
        assert s.execd_pids() == pids, f"{mode}: csv2lp exited or was restarted"
        assert not list((s.spool / "error").glob("*")), f"{mode}: the file went to error/"
        assert (s.spool / "big.csv").exists()
        page.come_back()
        wait_until(lambda: "flow control: Telegraf's buffer numbers from" in s.telegraf.log_text()[log_before:],
                   30, f"csv2lp to take the honest page again after {mode}")
    assert peak <= WINDOW, f"Telegraf's buffer reached {peak:,} while the page lied"
    assert emitted() < ROWS, "the file was through before the lies: nothing was tested at the window"

    s.server.start()
    expected = expected_per_series(source)
    wait_for_count(s.server, s.server.bucket, ROWS, timeout=240)
    assert count_per_series(s.server, s.server.bucket) == expected
    wait_until(lambda: (s.spool / "done" / "big.csv").exists(), 120, "big.csv in done/")
    assert s.overflow_lines() == []
