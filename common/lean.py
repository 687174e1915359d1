"""Keep the services' processes lean: no pandas, few malloc arenas, Arrow on
the system allocator.

pyarrow imports pandas, when it is installed, at its first conversion of
Python objects (a shim that looks for DataFrames): 350 modules and about
35 MB of resident memory in each process, for nothing itte uses. The
production image does not install pandas (a development extra, for the
benchmarks' baseline); this makes a development install run the services
as production does, so that the memory the benchmarks measure is the memory
production uses (issue #27: peak RSS per service; issue #30: the ingestor's
memory under the largest pushes).

Arrow's default memory pool (mimalloc in the wheels) keeps the pages of one
bulk batch for the next: with the system allocator, the aggregator's peak
RSS over a 1,000,000-record load fell from 301.9 and 305.4 MB to 294.6 and
291.7 MB (the cleaner's: 212.9 and 228.4 against 225.4 and 231.8), at rates
within the machine's noise (runs alternated;
docs/measurements.md, "Arrow's allocator").

glibc gives each thread that allocates an arena of its own, up to eight per
core, and an arena keeps the pages freed in it: the aggregator's threads
(asyncio's executor, librdkafka's, the consumers') each held a bulk batch's
worth. With two arenas, its peak RSS over a 1,000,000-record load fell
from 297.2 and 310.9 MB to 274.3 and 272.8 MB, at the same rate (runs
alternated; docs/measurements.md, "malloc arenas").
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType


class NoPandas(MetaPathFinder):
    """Answers ``import pandas`` as if it were not installed."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def without_pandas() -> None:
    """From now on in this process, pandas cannot be imported (a no-op once
    it is, or when this was called already)."""
    if "pandas" not in sys.modules and not any(isinstance(f, NoPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, NoPandas())


ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL"
ARENAS = 2
M_ARENA_MAX = -8  # glibc's malloc.h


def few_malloc_arenas(arenas: int = ARENAS) -> bool:
    """At most ``arenas`` malloc arenas from now on, unless the environment
    sets ``MALLOC_ARENA_MAX`` (glibc read it at start). Whether it was set
    here: not on a C library without ``mallopt`` (musl ignores it too)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    return mallopt is not None and mallopt(M_ARENA_MAX, arenas) == 1


def arrow_from_the_system_allocator() -> None:
    """Arrow's memory from the system allocator unless the environment names
    another pool: its default (mimalloc) kept the pages of freed batches, 50 MB
    more at the aggregator's peak in a bulk load (docs/measurements.md). Read
    by pyarrow when it is first imported, so this costs nothing to a process
    that never imports it."""
    os.environ.setdefault(ARROW_POOL, "system")


def service_process() -> None:
    """What every service command does first, before it starts a thread: no
    pandas, few malloc arenas, Arrow's memory from the system allocator."""
    without_pandas()
    few_malloc_arenas()
    arrow_from_the_system_allocator()
