"""W3: API speed under load, side by side with the same SQL through psycopg.

Loads the demo data into fresh servers and services, then for each query runs
wrk (64 connections) against the API as clients see it (the data does not
change during the run, so its response cache answers), against the API with
``Cache-Control: no-cache`` (every request to the database), and the query's
SQL straight through psycopg from as many threads. Needs wrk (Debian `wrk`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from sqlalchemy.dialects import postgresql

from bench.stack import running_stack, wait_until_counted
from bench.stats import percentile
from itte.demo import write_demo
from services.api.reads.indicateurs import Filters, build

QUERIES = {
    # limit: the API's default page (DEFAULT_LIMIT).
    "departement": ("/indicateurs?departement=33", Filters(departement="33", limit=1000)),
    "epci": (
        "/indicateurs?niveau=epci&departement=74&indicateur=population",
        Filters(niveau="epci", departement="74", indicateur="population", limit=1000),
    ),
}
# Every row of the demo files (secret and missing values included).
OBSERVATIONS = "SELECT count(*) FROM observations"
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, seconds: int, connections: int, *headers: str) -> dict[str, float | str]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
        + [option for header in headers for option in ("-H", header)]
        + [url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def found(pattern: str) -> re.Match[str]:
        match = re.search(pattern, out, re.M)
        if match is None:
            raise RuntimeError(f"wrk's output lacks {pattern!r}:\n{out}")
        return match

    def latency(percentile: str) -> float:
        value, unit = found(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$").groups()
        return round(float(value) * UNITS[unit], 2)

    rate = float(found(r"Requests/sec:\s+([\d.]+)").group(1))
    # wrk prints these lines only when there are some.
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests_per_second": round(rate),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(map(int, socket.groups())) if socket else 0,
        "output": out,  # the raw sample
    }


def direct(database_url: str, sql: str, seconds: int, threads: int) -> dict[str, float | str]:
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
    return {
        "requests_per_second": round(len(latencies) / seconds),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
    }


def data_rows(path: Path) -> int:
    with open(path, encoding="utf-8") as lines:
        return sum(1 for _ in lines) - 1  # the header


@dataclass(frozen=True)
class Load:
    seconds: int
    no_cache_seconds: int
    connections: int


def run(load: Load, repeats: int, workdir: Path, data: str = "demo") -> dict[str, object]:
    """On one stack loaded with the demo's current year (``population``: its
    first file only; the demo's history is left out, as when the figures of
    BENCHMARKS.md were taken), each query ``repeats`` times: wrk on the API,
    then the same SQL."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: apt-get install wrk (make bench installs it)")
    runs: dict[str, list[dict[str, dict[str, float | str]]]] = {name: [] for name in QUERIES}
    with running_stack(workdir / "state-w3") as stack:
        files = write_demo(workdir / "demo")[: 1 if data == "population" else 2]
        subprocess.run(
            [sys.executable, "-m", "itte", "ingest", *map(str, files)],
            env=stack.env,
            check=True,
            capture_output=True,
        )
        expected = sum(data_rows(f) for f in files)
        wait_until_counted(stack.servers.database_url, expected, OBSERVATIONS)
        time.sleep(3)  # let the outbox relay settle: measure the API alone
        for _ in range(repeats):
            for name, (path, filters) in QUERIES.items():
                sql = str(
                    build(filters).compile(
                        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
                    )
                )
                url = stack.url("api", path)
                runs[name].append(
                    {
                        "api": wrk(url, load.seconds, load.connections),
                        "api_no_cache": wrk(
                            url, load.no_cache_seconds, load.connections, "Cache-Control: no-cache"
                        ),
                        "psycopg": direct(
                            stack.servers.database_url, sql, load.seconds, load.connections
                        ),
                    }
                )
    return {**asdict(load), "data": data, "runs": runs}
