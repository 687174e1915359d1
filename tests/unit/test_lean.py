"""The services run without pandas, as production does (common/lean.py)."""

from __future__ import annotations

import subprocess
import sys


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
