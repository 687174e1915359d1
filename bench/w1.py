"""W1: bulk load through the running services, by file and by HTTP NDJSON.

Each run starts fresh servers and the four services, pushes the generated
records, and stops the clock when every one is counted in the France-level
aggregates (committed in the same transaction as every other level) and
every change is published on ``indicators.aggregates`` (the relay's cursor
at the last number of the change log). The CPU of every process counts:
the services, the broker, Postgres and the `itte ingest` command.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.data import (
    YEARS,
    as_json,
    corrections,
    indicators_for,
    ndjson_bodies,
    write_catalogue,
    write_long_csv,
)
from bench.stack import COUNTED_AT_FRANCE, Stack, named, running_stack, wait_until_counted

UPDATE_RECORDS = 1_000  # corrections sent once the load is committed
HTTP_RECORDS_PER_REQUEST = 10_000
HTTP_SENDERS = 2  # concurrent producers; the ingestor parses while one waits


# Every number taken is published: the relay's cursor is at the log's last.
PUBLISHED = """
SELECT coalesce((SELECT published_seq FROM outbox_cursor WHERE relay = 'aggregates'), 0)
       >= coalesce((SELECT max(change_seq) FROM aggregate_change_log), 0)
"""
FRANCE_TOTALS = """
SELECT indicateur, annee, valeur FROM aggregates
WHERE niveau = 'france' AND indicateur LIKE %s ORDER BY 1, 2
"""


def children_cpu() -> float:
    """CPU seconds of this process's children that have ended (`itte ingest`)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def by_file(stack: Stack, records: int, prefix: str, workdir: Path) -> float:
    """Starts the clock, runs `itte ingest` on the file; the command's CPU is
    in ``children_cpu``."""
    source = workdir / f"{prefix}.csv"
    write_long_csv(source, records, prefix)
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "itte", "ingest", str(source)],
        env=stack.env,
        check=True,
        capture_output=True,
    )
    source.unlink()
    return started


def wait_until_published(database_url: str, timeout: float = 300) -> float:
    """The monotonic time at which every committed change was published."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            row = conn.execute(PUBLISHED).fetchone()
            now = time.monotonic()
            if row and row[0]:
                return now
            if now > deadline:
                raise RuntimeError(f"changes still unpublished after {timeout} s")
            time.sleep(0.05)


def france_totals(database_url: str, prefix: str) -> dict[str, str]:
    """Each indicator-year's France total, exact, as `indicateur|annee`."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(FRANCE_TOTALS, (named(prefix),)).fetchall()
    return {f"{i}|{a}": str(v) for i, a, v in rows}


def by_http(stack: Stack, records: int, prefix: str, workdir: Path) -> float:
    bodies = ndjson_bodies(records, prefix, HTTP_RECORDS_PER_REQUEST)
    url = stack.url("ingestor", "/observations")
    headers = {"Content-Type": "application/x-ndjson"}
    started = time.monotonic()
    with httpx.Client(timeout=120) as client, ThreadPoolExecutor(HTTP_SENDERS) as pool:

        def send(body: bytes) -> None:
            client.post(url, content=body, headers=headers).raise_for_status()

        list(pool.map(send, bodies))
    return started


PUSH = {"file": by_file, "http": by_http}


def serve_update(stack: Stack, prefix: str, count: int) -> float:
    """Seconds from sending ``count`` corrections (one HTTP request) to the API
    serving the France total they move (by exactly ``count``)."""
    url = stack.url("api", f"/indicateurs?niveau=france&indicateur={prefix}_0&annee={YEARS[0]}")
    body = "\n".join(json.dumps(as_json(o)) for o in corrections(count, prefix)).encode()
    with httpx.Client(timeout=30) as client:
        expected = client.get(url).json()[0]["valeur"] + count
        started = time.monotonic()
        client.post(
            stack.url("ingestor", "/observations"),
            content=body,
            headers={"Content-Type": "application/x-ndjson"},
        ).raise_for_status()
        while abs(client.get(url).json()[0]["valeur"] - expected) > 0.001:
            if time.monotonic() - started > 60:
                raise RuntimeError(f"the update of {prefix} was not served within 60 s")
            time.sleep(0.005)
        return time.monotonic() - started


def run(
    mode: str,
    records: int,
    prefix: str,
    workdir: Path,
    profile: Path | None = None,
    workers: int = 1,
    agregation: str = "somme",
    timeline: bool = False,
    **settings: str,
) -> dict[str, Any]:
    """One load; with ``profile``, py-spy samples the services meanwhile and
    writes one raw profile per service under it. ``workers``: cleaners and
    aggregators. ``agregation``: the generated indicators' rule (bench.kinds).
    ``timeline``: the cores each process used, second by second (bench.timeline).
    ``settings``: ITTE_* variables of the services, for experiments (e.g.
    BATCH_MESSAGES="100")."""
    catalogue = write_catalogue(
        workdir / f"{prefix}.toml", prefix, indicators_for(records), agregation
    )
    with running_stack(workdir / f"state-{prefix}", catalogue, workers, **settings) as stack:
        cpu_before, command_before = stack.cpu_seconds(), children_cpu()
        spies = sample(stack, profile) if profile else []
        cores = CoreTimeline(stack) if timeline else None
        started = PUSH[mode](stack, records, prefix, workdir)
        pushed = time.monotonic()
        command_cpu = children_cpu() - command_before  # `itte ingest` (by file)
        counted = wait_until_counted(
            stack.servers.database_url, records, COUNTED_AT_FRANCE, named(prefix)
        )
        done = wait_until_published(stack.servers.database_url)
        seconds = cores.stop() if cores else None
        totals = france_totals(stack.servers.database_url, prefix)
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file and exits
        for spy in spies:
            spy.wait(60)
        # The corrections move a sum by exactly their count; not an extreme.
        update = (
            serve_update(stack, prefix, min(UPDATE_RECORDS, records))
            if agregation == "somme"
            else None
        )
        cpu = {n: round(s - cpu_before.get(n, 0), 1) for n, s in stack.cpu_seconds().items()}
        if mode == "file":
            cpu["itte ingest"] = round(command_cpu, 1)
        rss = stack.peak_rss_mb()
    return {
        "records": records,
        "push_seconds": round(pushed - started, 2),
        "committed_seconds": round(counted - started, 2),
        "seconds": round(done - started, 2),
        "records_per_second": round(records / (done - started)),
        "update_seconds": None if update is None else round(update, 3),
        "cpu_seconds": cpu,
        "cpu_us_per_record": round(1e6 * sum(cpu.values()) / records, 1),
        "france_totals": totals,
        "peak_rss_mb": rss,
    } | ({"cores_by_second": seconds} if seconds is not None else {})


class CoreTimeline:
    """Samples the processes' CPU time once a second, from a thread."""

    def __init__(self, stack: Stack, every: float = 1.0) -> None:
        self._stack, self._every = stack, every
        self._stop = threading.Event()
        self._rows: list[dict[str, float]] = []
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        origin = last = time.monotonic()
        before = self._stack.cpu_seconds()
        while not self._stop.wait(self._every):
            now, after = time.monotonic(), self._stack.cpu_seconds()
            row = {"t": round(now - origin, 1)}
            row |= {n: round((s - before.get(n, 0)) / (now - last), 2) for n, s in after.items()}
            self._rows.append(row)
            last, before = now, after

    def stop(self) -> list[dict[str, float]]:
        self._stop.set()
        self._thread.join()
        return self._rows


def sample(stack: Stack, into: Path) -> list[subprocess.Popen[bytes]]:
    into.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(process.pid),
                "--format",
                "raw",
                "--nolineno",
                "--nonblocking",
                "--output",
                str(into / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, process in stack.processes.items()
        # By file, `itte ingest` reads and publishes: the ingestor service idles.
        if name in ("cleaner", "aggregator")
    ]
