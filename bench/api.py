"""W3: API speed under load, side by side with the same SQL through psycopg.

Starts fresh embedded servers and the services, loads the demo data, then for
each query runs wrk (64 connections) against the API and, in the same run, the
query's SQL straight through psycopg from as many threads. Writes
``bench/results/api.json``. Needs wrk (Debian package `wrk`).

    python -m bench.api [--seconds 30] [--connections 64]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy.dialects import postgresql

from bench.bulk_load import wait_for_observations
from bench.data import RESULTS
from bench.stack import running_stack
from itte.demo import write_demo
from services.api.queries import Filters, build

QUERIES = {
    "departement": ("/indicateurs?departement=33", Filters(departement="33")),
    "epci": (
        "/indicateurs?niveau=epci&departement=74&indicateur=population",
        Filters(niveau="epci", departement="74", indicateur="population"),
    ),
}
TARGET = {"requests_per_second": 2000, "p99_ms": 25}  # the département query
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(percentile: str) -> float:
        value, unit = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)$", out, re.M).groups()
        return round(float(value) * UNITS[unit], 2)

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_second": round(rate),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "errors": int(errors.group(1)) if errors else 0,
    }


def direct(database_url: str, sql: str, seconds: int, threads: int) -> dict[str, float]:
    """The same SQL from `threads` connections for `seconds` seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        mine = []
        with psycopg.connect(database_url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                conn.execute(sql).fetchall()
                mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    latencies.sort()
    return {
        "requests_per_second": round(len(latencies) / seconds),
        "p50_ms": round(latencies[len(latencies) // 2], 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)], 2),
    }


def data_rows(path: Path) -> int:
    with open(path, encoding="utf-8") as lines:
        return sum(1 for _ in lines) - 1  # the header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--out", type=Path, default=RESULTS / "api.json")
    parser.add_argument(
        "--data",
        choices=["demo", "population"],
        default="demo",
        help="population: only the first demo file (a quick run)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    workdir = Path(tempfile.mkdtemp(prefix="itte-bench-api-"))
    runs = {}
    with running_stack(workdir / "state") as stack:
        files = write_demo(workdir / "demo")[: 1 if args.data == "population" else None]
        subprocess.run(
            [sys.executable, "-m", "itte", "ingest", *map(str, files)],
            env=stack.env,
            check=True,
            capture_output=True,
        )
        wait_for_observations(stack, sum(data_rows(f) for f in files))
        time.sleep(3)  # let the outbox relay settle: measure the API alone
        for name, (path, filters) in QUERIES.items():
            sql = str(
                build(filters).compile(
                    dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
                )
            )
            runs[name] = {
                "api": wrk(stack.url("api", path), args.seconds, args.connections),
                "psycopg": direct(stack.servers.database_url, sql, args.seconds, args.connections),
            }
    shutil.rmtree(workdir)
    api = runs["departement"]["api"]
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores (wrk, the API and Postgres share them)",
        "seconds": args.seconds,
        "connections": args.connections,
        "data": args.data,
        "runs": runs,
        "ratios_api_to_psycopg": {
            n: round(r["api"]["requests_per_second"] / r["psycopg"]["requests_per_second"], 2)
            for n, r in runs.items()
        },
        "target": {
            **TARGET,
            "met": api["requests_per_second"] >= TARGET["requests_per_second"]
            and api["p99_ms"] < TARGET["p99_ms"],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
