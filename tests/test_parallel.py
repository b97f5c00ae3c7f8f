"""ordered_map: results in input order, every result delivered before an input error surfaces."""

from __future__ import annotations

import threading
import time

import pytest

from converter.parallel import ordered_map


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_come_back_in_input_order(workers):
    def slow_for_even(n):
        time.sleep(0.01 if n % 2 == 0 else 0)
        return n * n

    assert list(ordered_map(slow_for_even, range(20), workers=workers)) == [(n, n * n) for n in range(20)]


@pytest.mark.parametrize("workers", [1, 2])
def test_items_read_before_an_input_error_are_all_delivered(workers):
    def items():
        yield from range(5)
        raise OSError("damaged file")

    seen = []
    with pytest.raises(OSError, match="damaged file"):
        for item, result in ordered_map(lambda n: n + 100, items(), workers=workers):
            seen.append(result)
    assert seen == [100, 101, 102, 103, 104]


def test_work_really_runs_on_other_threads():
    names = {name for _, name in ordered_map(lambda _: threading.current_thread().name, range(8), workers=2)}
    assert names and all(name.startswith("csv2lp-encode") for name in names)


def test_a_worker_error_surfaces_in_order():
    def fail_on_three(n):
        if n == 3:
            raise ValueError("bad batch")
        return n

    seen = []
    with pytest.raises(ValueError, match="bad batch"):
        for _, result in ordered_map(fail_on_three, range(6), workers=2):
            seen.append(result)
    assert seen == [0, 1, 2]
