"""Generated, reproducible observations over the real communes, for benchmarks."""

from __future__ import annotations

import csv
from pathlib import Path

from itte.referential import load

RESULTS = Path(__file__).parent / "results"


def write_long_csv(path: Path, rows: int, prefix: str) -> int:
    """``rows`` observations in the long format (`;`, decimal commas), cycling
    over every commune; one indicator ``<prefix>_<n>`` per pass. Returns the
    number of indicators."""
    communes = sorted(load().communes)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(["variable", "code", "annee", "valeur", "unite"])
        for i in range(rows):
            writer.writerow(
                [
                    f"{prefix}_{i // len(communes)}",
                    communes[i % len(communes)],
                    2024,
                    f"{(i * 7919) % 100000 // 100},{i % 100:02d}",
                    "u",
                ]
            )
    return -(-rows // len(communes))
