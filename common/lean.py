"""Keep pandas out of the services' processes.

pyarrow imports pandas, when it is installed, at its first conversion of
Python objects (a shim that looks for DataFrames): 350 modules and about
35 MB of resident memory in each process, for nothing itte uses. The
production image does not install pandas (a development extra, for the
benchmarks' baseline); this makes a development install run the services
as production does, so that the memory the benchmarks measure is the memory
production uses (issue #27: peak RSS per service; issue #30: the ingestor's
memory under the largest pushes).
"""

from __future__ import annotations

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
