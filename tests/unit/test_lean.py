"""The services run without pandas, as production does (common/lean.py)."""

from __future__ import annotations

import subprocess
import sys

from common import lean


def test_a_service_process_converts_columns_without_importing_pandas() -> None:
    # A fresh interpreter: this one may hold pandas already (hypothesis, the bench).
    code = (
        "import sys; from common import lean; lean.without_pandas(); lean.without_pandas()\n"
        "from services.ingestor.columns import table_of\n"
        "table = table_of([{'indicateur': 'pop', 'commune': '33063', 'valeur': 1.5}])\n"
        "assert table.num_rows == 1 and 'pandas' not in sys.modules, sorted(sys.modules)\n"
        "from sklearn.cluster import KMeans  # the API's typologies work without it\n"
        "import numpy; KMeans(2, n_init=1, random_state=0).fit(numpy.eye(3))\n"
        "try:\n    import pandas\nexcept ModuleNotFoundError:\n    print('refused')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "refused"


def test_a_service_process_takes_arrow_memory_from_the_system_allocator() -> None:
    code = (
        "from common import lean; lean.service_process()\n"
        "import pyarrow; print(pyarrow.default_memory_pool().backend_name)\n"
    )

    def pool(**env: str) -> str:
        import os

        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"} | env,
        )
        return done.stdout.strip()

    assert pool() == "system"
    assert pool(ARROW_DEFAULT_MEMORY_POOL="mimalloc") == "mimalloc"  # the operator's choice


def test_a_service_process_keeps_to_two_malloc_arenas_whatever_its_threads() -> None:
    # glibc prints one "Arena N:" block per arena to stderr (malloc_stats).
    code = (
        "import ctypes, sys, threading\n"
        "from common import lean\n"
        "if sys.argv[1] == 'service': lean.service_process()\n"
        "start = threading.Barrier(8)\n"
        "def work():\n"
        "    start.wait(); kept = [bytearray(4096 + i) for i in range(2000)]; start.wait()\n"
        "threads = [threading.Thread(target=work) for _ in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "ctypes.CDLL(None).malloc_stats()\n"
    )

    def arenas(*args: str, **env: str) -> int:
        import os

        done = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env,
        )
        return done.stderr.count("Arena ")

    assert arenas("service") == lean.ARENAS
    assert arenas("plain") > lean.ARENAS  # what the threads take without it
    assert arenas("service", MALLOC_ARENA_MAX="3") == 3  # the operator's choice
