"""Fresh embedded servers and the four services, for one benchmark run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg

from bench.data import YEARS, communes, write_catalogue, write_long_csv
from common import db, migrations
from common.kafka import ensure_topics
from common.servers import Servers
from itte.embedded import ensure_servers, free_port, stop_embedded
from itte.processes import Processes, instances, wait_http

# Cheap to poll on millions of rows (a handful of France-level rows), and
# committed in the same transaction as every other aggregate of the records.
COUNTED_AT_FRANCE = (
    "SELECT coalesce(sum(nb_valeurs), 0) FROM aggregates"
    " WHERE niveau = 'france' AND indicateur LIKE %s"
)


@dataclass(frozen=True)
class Stack:
    servers: Servers
    env: dict[str, str]
    ports: dict[str, int]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]]

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service.upper()]}{path}"

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time so far (user + system) of each service, and of the embedded
        broker and Postgres (all its processes) when they run here."""
        pids = {name: [process.pid] for name, process in self.processes.items()}
        state = self.logs.parent
        if (state / "broker.json").exists():
            pids["broker"] = [json.loads((state / "broker.json").read_text())["pid"]]
        if (state / "pgdata" / "postmaster.pid").exists():
            postmaster = psutil.Process(
                int((state / "pgdata" / "postmaster.pid").read_text().split()[0])
            )
            pids["postgres"] = [postmaster.pid] + [c.pid for c in postmaster.children(True)]
        return {name: sum(cpu_of(pid) for pid in group) for name, group in pids.items()}

    def peak_rss_mb(self) -> dict[str, float]:
        """Each service's peak resident memory so far (the kernel's high-water mark)."""
        return {name: peak_rss_mb(process.pid) for name, process in self.processes.items()}


def cpu_of(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:  # a Postgres backend that just ended
        return 0.0
    return times.user + times.system


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmHWM for process {pid}")


def named(prefix: str) -> str:
    """LIKE pattern of the indicators ``<prefix>_0``, ``<prefix>_1``…"""
    return f"{prefix}\\_%"


def wait_until_counted(
    database_url: str, expected: int, sql: str, *params: object, stall: float = 60
) -> float:
    """Polls ``sql`` (a count) until it reaches ``expected``; returns the
    monotonic time it did. Fails after ``stall`` seconds without progress."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        done, progress_at = 0, time.monotonic()
        while True:
            row = conn.execute(sql, params).fetchone()
            count = int(row[0]) if row else 0
            now = time.monotonic()
            if count >= expected:
                return now
            if count > done:
                done, progress_at = count, now
            elif now - progress_at > stall:
                raise RuntimeError(f"stalled at {done}/{expected}: {sql} {params}")
            time.sleep(0.1)


@contextmanager
def every_commune_loaded(prefix: str) -> Iterator[tuple[Stack, int]]:
    """A stack of its own (in a temporary folder) holding one indicator,
    ``<prefix>_0``, for every commune and each of ``YEARS``, loaded through
    ``itte ingest``; and how many records that is."""
    records = len(communes()) * len(YEARS)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        catalogue = write_catalogue(work / f"{prefix}.toml", prefix, 1)
        with running_stack(work / "state", catalogue) as stack:
            ingest_long_csv(stack, work, prefix, records)
            yield stack, records


def ingest_long_csv(stack: Stack, work: Path, prefix: str, records: int) -> None:
    """``records`` observations of ``<prefix>_0``… (bench.data), written as a
    producer's long CSV in ``work``, through ``itte ingest``; returns once
    France counts them all."""
    source = work / f"{prefix}.csv"
    write_long_csv(source, records, prefix)
    subprocess.run(
        [sys.executable, "-m", "itte", "ingest", str(source)],
        env=stack.env,
        check=True,
        capture_output=True,
    )
    wait_until_counted(stack.servers.database_url, records, COUNTED_AT_FRANCE, named(prefix))


def given_or_embedded(state: Path) -> Servers:
    """The servers named by the environment, else embedded ones in ``state``."""
    return ensure_servers(
        kafka_bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        database_url=os.environ.get("DATABASE_URL"),
        state_dir=state,
    )


@contextmanager
def running_stack(
    state: Path, catalogue_path: Path | None = None, workers: int = 1, **settings: str
) -> Iterator[Stack]:
    """``settings``: extra ITTE_* variables for the services, e.g. BATCH_RECORDS="1";
    ``workers``: cleaner and aggregator processes each (as ``ITTE_WORKERS``).
    On servers given by the environment, runs share topics and tables: name
    each run's indicators with a prefix of its own."""
    servers = given_or_embedded(state)
    try:
        ensure_topics(servers.kafka_bootstrap_servers, 4)
        migrations.upgrade(db.make_engine(servers.database_url))
        ports = {name: free_port() for name in ("API", "INGESTOR", "CLEANER", "AGGREGATOR")}
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap_servers,
            "DATABASE_URL": servers.database_url,
            "ITTE_STATE_DIR": str(state),
            "ITTE_ENVIRONMENT": "local",  # a measurement on this machine: generated key
            "ITTE_LOG_LEVEL": "WARNING",
            **({"ITTE_CATALOGUE": str(catalogue_path)} if catalogue_path else {}),
            **{f"ITTE_{name}_PORT": str(port) for name, port in ports.items()},
            **{f"ITTE_{name}": value for name, value in settings.items()},
        }
        base = {name.lower(): port for name, port in ports.items()}
        # A free port for each process beyond the first of its stage.
        each = {name: base.get(name) or free_port() for name in instances(base, workers)}
        processes = Processes(env, state / "logs", each)
        processes.start_all()
        try:
            stack = Stack(servers, env, ports, state / "logs", processes.running)
            wait_http(stack.url("api", "/health"), 120, processes.running["api"])
            wait_http(stack.url("ingestor", "/health"), 120, processes.running["ingestor"])
            # Ready: in their consumer groups with partitions, so that no
            # figure counts a group's join (about 3 s on the embedded broker).
            for stage in ("cleaner", "aggregator"):
                wait_http(stack.url(stage, "/readyz"), 120, processes.running[stage])
            yield stack
        finally:
            processes.stop_all()
    finally:
        stop_embedded(state)
