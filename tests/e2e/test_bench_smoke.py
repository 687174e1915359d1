"""The benchmarks, at a tiny size, so that they cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("module", "options"),
    [
        ("bench.bulk_load", ["--records", "3000", "--batch-records", "500"]),
        ("bench.ingest_memory", ["--rows", "2000", "4000"]),
        ("bench.api", ["--seconds", "1", "--connections", "8", "--data", "population"]),
    ],
)
def test_benchmark_runs_and_writes_its_figures(tmp_path: Path, module: str, options: list[str]):
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", module, *options, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["runs"] and figures["date"]
