"""Memory of the ingestor under hostile HTTP bodies (issue #30, point 1).

Starts a stack (embedded broker and Postgres unless the environment names
servers), then posts, one at a time, bodies of up to the size limit built to
cost memory: millions of empty objects as a JSON array and as NDJSON, deep
nesting, records of more fields than allowed, the most records of the most
fields allowed, the most records of long labels. For each: the answer's
status, its time, and the ingestor's peak RSS so far (``VmHWM``), written to
``bench/results/body_memory.json``. Target: the peak stays under 300 MB and
each answer comes within a few seconds.

    python -m bench.body_memory
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.data import memory_report
from bench.stack import peak_rss_mb, running_stack
from common.settings import CommonSettings
from schemas import limits
from services.ingestor.settings import IngestorSettings

BODY_BYTES = IngestorSettings.model_fields["max_body_bytes"].default
RECORDS = IngestorSettings.model_fields["max_records_per_request"].default
TARGET_MB = 300


def record(fields: int, label: str = "") -> bytes:
    extra = "".join(f',"k{i}":0' for i in range(fields - 2))
    text = f'"libelle_indicateur":"{label}",' if label else ""
    return f'{{{text}"indicateur":"bench_body","commune":"33063"{extra}}}'.encode()


def array(item: bytes, count: int) -> bytes:
    return (b"[" + b",".join([item] * count) + b"]")[:BODY_BYTES]


BODIES: dict[str, Callable[[], tuple[bytes, str]]] = {
    "empty objects, JSON array": lambda: (array(b"{}", BODY_BYTES // 3), "application/json"),
    "empty objects, NDJSON": lambda: (b"{}\n" * (BODY_BYTES // 3), "application/x-ndjson"),
    "nesting": lambda: (b"[" * (BODY_BYTES // 2), "application/json"),
    "records of too many fields": lambda: (
        array(record(limits.MAX_FIELDS * 2), RECORDS),
        "application/json",
    ),
    "most records of the most fields": lambda: (
        array(record(limits.MAX_FIELDS), RECORDS),
        "application/json",
    ),
    "most records of long labels": lambda: (
        array(record(3, "é" * 300), min(RECORDS, BODY_BYTES // 700)),
        "application/json",
    ),
}


def main() -> None:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder, running_stack(Path(folder) / "state") as stack:
        pid = stack.processes["ingestor"].pid
        idle = peak_rss_mb(pid)
        for name, build in BODIES.items():
            body, media = build()
            started = time.monotonic()
            answer = httpx.post(
                stack.url("ingestor", "/observations"),
                content=body,
                headers={"Content-Type": media},
                timeout=120,
            )
            results.append(
                {
                    "body": name,
                    "bytes": len(body),
                    "status": answer.status_code,
                    "seconds": round(time.monotonic() - started, 2),
                    "peak_rss_mb": peak_rss_mb(pid),
                }
            )
            print(results[-1], flush=True)
    partitions = CommonSettings.model_fields["topic_partitions"].default
    memory_report("body_memory", idle, TARGET_MB, "bodies", results, partitions=partitions)


if __name__ == "__main__":
    main()
