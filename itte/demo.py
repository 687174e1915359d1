"""Demo data for ``make up``: real populations, plus clearly synthetic indicators."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

from common import referential

YEAR = 2026  # populations attached to the 2026 COG edition
HEADER = [
    "codgeo_libelle",
    "libelle_variable",
    "variable",
    "libelle_sous_champ",
    "sous_champ",
    "unite",
    "code",
    "annee",
    "valeur",
]
SYNTHETIC = "(SYNTHÉTIQUE, démonstration)"


def _population() -> Iterator[list[object]]:
    for c in sorted(referential.load().communes.values(), key=lambda c: c.code):
        value = "" if c.population is None else c.population
        yield [
            c.nom,
            "Population municipale",
            "population",
            "Total",
            "total",
            "habitants",
            c.code,
            YEAR,
            value,
        ]


def _synthetic(seed: int) -> Iterator[list[object]]:
    """Random but plausible values, one indicator per aggregation kind."""
    rng = random.Random(seed)
    for c in sorted(referential.load().communes.values(), key=lambda c: c.code):
        pop = c.population or 0
        points = rng.randint(0, 2 + pop // 800)
        secret = rng.random() < 0.01  # a few secret cells, as real files have
        rows = [
            (
                "points_recharge_synthetique",
                "Points de recharge",
                "points de charge",
                "s" if secret else points,
            ),
            ("communes_equipees_synthetique", "Commune équipée", "communes", int(points > 0)),
            (
                "part_menages_chauffage_bois_synthetique",
                "Part des ménages chauffés au bois",
                "%",
                round(rng.uniform(2, 45), 1),
            ),
            (
                "temperature_max_synthetique",
                "Température maximale",
                "°C",
                round(rng.uniform(28, 42), 1),
            ),
        ]
        for variable, label, unit, value in rows:
            yield [
                c.nom,
                f"{label} {SYNTHETIC}",
                variable,
                "Total",
                "total",
                unit,
                c.code,
                YEAR,
                value,
            ]


def write_demo(folder: Path, seed: int = 2026) -> list[Path]:
    """Write the demo files (long format, as the source database exports it)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "population.csv": (";", _population()),
        "indicateurs_SYNTHETIQUES.csv": (",", _synthetic(seed)),
    }
    for name, (delimiter, rows) in files.items():
        with open(folder / name, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, delimiter=delimiter)
            writer.writerow(HEADER)
            writer.writerows(rows)
    return [folder / name for name in files]
