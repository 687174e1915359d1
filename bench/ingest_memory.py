"""Memory of `itte ingest` on a large file stays flat (issue: 2 million rows).

Generates long-format CSV files of 200,000 and 2,000,000 rows, ingests each
into a fresh embedded broker with `itte ingest` as a separate process, samples
its resident memory every 50 ms, and writes the peaks side by side to
``bench/results/ingest_memory.json``.

    python -m bench.ingest_memory [--rows 200000 2000000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.data import RESULTS, write_long_csv
from common.kafka import ensure_topics
from itte.embedded import ensure_broker, stop_embedded


def measure(path: Path, env: dict[str, str]) -> dict[str, Any]:
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "itte", "ingest", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    watched = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    output = process.stdout.read() if process.stdout else ""
    seconds = time.monotonic() - started
    return {
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "peak_rss_mb": round(peak / 1e6, 1),
        "seconds": round(seconds, 1),
        "summary": output.strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 2_000_000])
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS / "ingest_memory.json",
        help="Where to write the figures (JSON).",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="itte-bench-mem-"))
    try:
        bootstrap = ensure_broker(workdir / "state")
        ensure_topics(bootstrap, 4)
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": "unused",
            "ITTE_STATE_DIR": str(workdir / "state"),
        }
        runs = {}
        for rows in args.rows:
            path = workdir / f"rows-{rows}.csv"
            write_long_csv(path, rows, "mem")
            runs[rows] = measure(path, env)
            path.unlink()
            print(rows, runs[rows])
    finally:
        stop_embedded(workdir / "state")
        shutil.rmtree(workdir, ignore_errors=True)
    small, large = min(runs), max(runs)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores",
        "runs": runs,
        "peak_rss_ratio_largest_to_smallest": round(
            runs[large]["peak_rss_mb"] / runs[small]["peak_rss_mb"], 2
        ),
        "rows_ratio": large / small,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}))


if __name__ == "__main__":
    main()
