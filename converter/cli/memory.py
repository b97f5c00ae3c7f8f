"""Which allocator Arrow uses in a csv2lp process.

pyarrow's default pool on Linux is mimalloc, which keeps freed pages for reuse. csv2lp
allocates and frees a few blocks' worth of arrays per block, on three threads, for the whole
run; jemalloc as pyarrow configures it hands freed pages back to the system. Measured on the
2 GB generated benchmark file with 2 MiB blocks: peak RSS 274 MB with mimalloc, 218 MB with
jemalloc, the same time. A pool chosen with ARROW_DEFAULT_MEMORY_POOL is left as it is, and
builds of pyarrow without jemalloc (Windows) keep their default.
"""

from __future__ import annotations

import os

import pyarrow as pa

POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def prefer_jemalloc() -> str:
    """Make jemalloc Arrow's default pool for this process if it may and can; the pool's name."""
    if POOL_VARIABLE not in os.environ:
        try:
            pa.set_memory_pool(pa.jemalloc_memory_pool())
        except NotImplementedError:  # pa.ArrowNotImplementedError: a build without jemalloc
            pass
    return pa.default_memory_pool().backend_name
