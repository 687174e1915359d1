"""Bulk load through the running services, end to end, side by side.

For each envelope size (records per Kafka message), starts a fresh embedded
broker and database and the four services, ingests a generated file of
commune observations with ``itte ingest``, and times until every aggregate is
committed in Postgres. Writes ``bench/results/bulk_load.json``.

    python -m bench.bulk_load --records 200000 --batch-records 500 1
"""

from __future__ import annotations

import argparse
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

from bench.data import RESULTS, write_long_csv
from bench.stack import Stack, running_stack
from itte.referential import load


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
    with running_stack(state, catalogue_path, BATCH_RECORDS=str(batch_records)) as stack:
        source = workdir / "bench.csv"
        indicators = write_long_csv(source, records, "bench")
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "itte", "ingest", str(source)],
            env=stack.env,
            check=True,
            capture_output=True,
        )
        ingested = time.monotonic() - started
        wait_for_observations(stack, records)
        committed = time.monotonic() - started
    return {
        "records": records,
        "indicators": indicators,
        "batch_records": batch_records,
        "ingest_seconds": round(ingested, 2),
        "end_to_end_seconds": round(committed, 2),
        "records_per_second": round(records / committed),
    }


def wait_for_observations(stack: Stack, records: int) -> None:
    with psycopg.connect(stack.servers.database_url, autocommit=True) as conn:
        done, progress_at = 0, time.monotonic()
        while done < records:
            count = conn.execute("SELECT count(*) FROM observations").fetchone()[0]
            if count > done:
                done, progress_at = count, time.monotonic()
            elif time.monotonic() - progress_at > 60:
                raise RuntimeError(f"stalled at {done}/{records} observations, see {stack.logs}")
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch-records", type=int, nargs="+", default=[500, 1])
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS / "bulk_load.json",
        help="Where to write the figures (JSON).",
    )
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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["ratios_to_first"]))


if __name__ == "__main__":
    main()
