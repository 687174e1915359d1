"""Memory of `itte ingest` on a large file stays flat (issue: 2 million rows).

Generates long-format CSV files of 200,000 and 2,000,000 rows, ingests each
into a fresh embedded broker with `itte ingest` as a separate process, samples
its resident memory every 50 ms, and writes the peaks side by side to
``bench/results/ingest_memory.json``.

    python -m bench.ingest_memory [--rows 200000 2000000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from itte.embedded import ensure_broker, stop_embedded
from itte.kafka import ensure_topics
from itte.referential import load

RESULTS = Path(__file__).parent / "results"


def generate(path: Path, rows: int) -> None:
    communes = sorted(load().communes)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(["variable", "code", "annee", "valeur", "unite"])
        for i in range(rows):
            writer.writerow(
                [
                    f"mem_{i // len(communes)}",
                    communes[i % len(communes)],
                    2024,
                    f"{i % 1000},5",
                    "u",
                ]
            )


def measure(path: Path, env: dict[str, str]) -> dict[str, float]:
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
            generate(path, rows)
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
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest_memory.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}))


if __name__ == "__main__":
    main()
