"""Generated, reproducible observations over the real communes, for benchmarks.

Record ``i`` is commune ``i mod N`` (the ~35,000 communes of the referential,
sorted) for the ``i div N``-th (indicator, year) pair: communes × indicators ×
years, with seeded values. Every benchmark and baseline reads the same records.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from common.referential import load

RESULTS = Path(__file__).parent / "results"
YEARS = (2022, 2023, 2024)
SEED = 2026


@dataclass(frozen=True)
class Observation:
    indicateur: str
    commune: str
    annee: int
    valeur: str  # "1234.56": exact in every pipeline (Decimal, NUMERIC)


@cache
def communes() -> tuple[str, ...]:
    return tuple(sorted(load().communes))


def indicators_for(records: int) -> int:
    return -(-records // (len(communes()) * len(YEARS)))


def observations(records: int, prefix: str, seed: int = SEED) -> Iterator[Observation]:
    """``records`` observations of indicators ``<prefix>_0``, ``<prefix>_1``…"""
    every, rng = communes(), random.Random(seed)
    for i in range(records):
        indicator, year = divmod(i // len(every), len(YEARS))
        cents = rng.randrange(10_000_000)
        yield Observation(
            f"{prefix}_{indicator}",
            every[i % len(every)],
            YEARS[year],
            f"{cents // 100}.{cents % 100:02d}",
        )


def corrected(o: Observation) -> Observation:
    """The same observation, one unit higher: a correction of known effect."""
    return Observation(o.indicateur, o.commune, o.annee, str(Decimal(o.valeur) + 1))


def corrections(count: int, prefix: str) -> list[Observation]:
    """The first ``count`` records (indicator ``<prefix>_0``, first year), corrected:
    that indicator's France total rises by exactly ``count``."""
    return [corrected(o) for o in observations(count, prefix)]


def write_long_csv(path: Path, records: int, prefix: str, corrected_first: int = 0) -> int:
    """The records as a producer's long CSV (`;`, decimal commas), the first
    ``corrected_first`` of them corrected. Returns the number of indicators."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(["variable", "code", "annee", "valeur", "unite"])
        for i, o in enumerate(observations(records, prefix)):
            if i < corrected_first:
                o = corrected(o)
            writer.writerow([o.indicateur, o.commune, o.annee, o.valeur.replace(".", ","), "u"])
    return indicators_for(records)


def as_json(o: Observation) -> dict[str, object]:
    return {"indicateur": o.indicateur, "commune": o.commune, "annee": o.annee, "valeur": o.valeur}


def ndjson_bodies(records: int, prefix: str, per_request: int) -> list[bytes]:
    """The records as NDJSON request bodies of ``per_request`` records."""
    bodies, lines = [], []
    for o in observations(records, prefix):
        lines.append(json.dumps(as_json(o)))
        if len(lines) == per_request:
            bodies.append("\n".join(lines).encode())
            lines = []
    if lines:
        bodies.append("\n".join(lines).encode())
    return bodies


def write_catalogue(path: Path, prefix: str, indicators: int, agregation: str = "somme") -> Path:
    """A catalogue declaring the generated indicators (sums, unless told)."""
    path.write_text(
        "".join(
            f'[[indicateur]]\nid = "{prefix}_{i}"\nlibelle = "{prefix} {i}"\n'
            f'agregation = "{agregation}"\n\n'
            for i in range(indicators)
        )
    )
    return path


def memory_report(
    name: str,
    idle_mb: float,
    target_mb: float,
    steps_name: str,
    steps: list[dict[str, Any]],
    **context: Any,
) -> None:
    """A memory benchmark's figures, in ``bench/results/<name>.json``: each
    step's peak RSS against the target; the summary printed."""
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        **context,
        "idle_peak_rss_mb": idle_mb,
        "target_mb": target_mb,
        "met": all(step["peak_rss_mb"] < target_mb for step in steps),
        steps_name: steps,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != steps_name}))
