"""Run a function over a stream on worker threads and hand the results back in order.

The caller's thread keeps pulling items (reading the next CSV block) while up to
`workers` items are processed; Arrow's compute kernels release the GIL, so on this
project's 2-core machines the reader and two encoders genuinely overlap. At most
`workers + ahead` items are in flight, which bounds memory.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


def ordered_map(function: Callable[[In], Out], items: Iterable[In], *, workers: int = 2,
                ahead: int = 1) -> Iterator[tuple[In, Out]]:
    """(item, function(item)) for every item, in the order of `items`."""
    if workers <= 1:
        for item in items:
            yield item, function(item)
        return
    pending: deque[tuple[In, Future[Out]]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="csv2lp-encode") as pool:
        try:
            iterator = iter(items)
            while True:
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                except BaseException:
                    # The input failed (a damaged file): hand out what was read before it, then fail.
                    while pending:
                        first, future = pending.popleft()
                        yield first, future.result()
                    raise
                pending.append((item, pool.submit(function, item)))
                while len(pending) > workers + ahead - 1:
                    first, future = pending.popleft()
                    yield first, future.result()
            while pending:
                first, future = pending.popleft()
                yield first, future.result()
        finally:
            for _, future in pending:
                future.cancel()
