"""Bulk load through the running services, end to end, side by side.

For each envelope size (records per Kafka message), starts a fresh embedded
broker and database and the four services, ingests a generated file of
commune observations with ``itte ingest``, and times until every aggregate is
committed in Postgres. Writes ``bench/results/bulk_load.json``.

    python -m bench.bulk_load --records 200000 --batch-records 500 1
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from itte import catalogue, db
from itte.embedded import ensure_servers, stop_embedded
from itte.kafka import ensure_topics
from itte.referential import load
from itte.runner import start_services, stop_services, wait_http

RESULTS = Path(__file__).parent / "results"


def generate(path: Path, records: int) -> int:
    """Observations over the real communes: `records` rows, several indicators."""
    communes = sorted(load().communes)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(["variable", "code", "annee", "valeur", "unite"])
        for i in range(records):
            commune = communes[i % len(communes)]
            indicator = f"bench_{i // len(communes)}"
            writer.writerow([indicator, commune, 2024, f"{(i * 7919) % 100000 / 100}", "u"])
    return -(-records // len(communes))


def write_catalogue(path: Path, indicators: int) -> Path:
    path.write_text(
        "".join(
            f'[[indicateur]]\nid = "bench_{i}"\nlibelle = "bench {i}"\nagregation = "somme"\n\n'
            for i in range(indicators)
        )
    )
    return path


def run(records: int, batch_records: int, workdir: Path) -> dict[str, float]:
    state = workdir / f"state-{batch_records}"
    communes = len(load().communes)
    catalogue_path = write_catalogue(workdir / "catalogue.toml", -(-records // communes))
    servers = ensure_servers(kafka_bootstrap_servers=None, database_url=None, state_dir=state)
    ensure_topics(servers.kafka_bootstrap_servers, 4)
    db.ensure_schema(db.make_engine(servers.database_url), catalogue.load(catalogue_path))
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap_servers,
        "DATABASE_URL": servers.database_url,
        "ITTE_STATE_DIR": str(state),
        "ITTE_BATCH_RECORDS": str(batch_records),
        "ITTE_LOG_LEVEL": "WARNING",
        "ITTE_CATALOGUE": str(catalogue_path),
        "ITTE_API_PORT": "18000",
        "ITTE_INGESTOR_PORT": "18001",
        "ITTE_CLEANER_PORT": "16066",
        "ITTE_AGGREGATOR_PORT": "16067",
    }
    processes = start_services(env, state / "logs")
    try:
        wait_http("http://127.0.0.1:18000/health", 120, processes["api"])
        wait_http("http://127.0.0.1:16067/health", 120, processes["aggregator"])
        source = workdir / "bench.csv"
        indicators = generate(source, records)
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "itte", "ingest", str(source)],
            env=env,
            check=True,
            capture_output=True,
        )
        ingested = time.monotonic() - started
        with psycopg.connect(servers.database_url, autocommit=True) as conn:
            done, progress_at = 0, time.monotonic()
            while done < records:
                count = conn.execute("SELECT count(*) FROM observations").fetchone()[0]
                if count > done:
                    done, progress_at = count, time.monotonic()
                elif time.monotonic() - progress_at > 60:
                    raise RuntimeError(
                        f"stalled at {done}/{records} observations, see {state}/logs"
                    )
                time.sleep(0.2)
        committed = time.monotonic() - started
        return {
            "records": records,
            "indicators": indicators,
            "batch_records": batch_records,
            "ingest_seconds": round(ingested, 2),
            "end_to_end_seconds": round(committed, 2),
            "records_per_second": round(records / committed),
        }
    finally:
        stop_services(processes)
        stop_embedded(state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch-records", type=int, nargs="+", default=[500, 1])
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="itte-bench-"))
    runs = [run(args.records, size, workdir) for size in args.batch_records]
    shutil.rmtree(workdir)  # kept, with the services' logs, when a run fails
    for r in runs:
        print(json.dumps(r))
    base = runs[0]["records_per_second"]
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "runs": runs,
        "ratios_to_first": [round(base / r["records_per_second"], 1) for r in runs],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bulk_load.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["ratios_to_first"]))


if __name__ == "__main__":
    main()
