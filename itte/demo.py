"""Demo data for ``make up``: real populations, plus clearly synthetic indicators."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from itte import referential

POPULATION_YEAR = 2026  # populations attached to the 2026 COG edition
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


def write_demo(folder: Path, seed: int = 2026) -> list[Path]:
    """Write the demo files (long format, as the source database exports it)."""
    ref = referential.load()
    folder.mkdir(parents=True, exist_ok=True)
    population = folder / "population.csv"
    with open(population, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(HEADER)
        for c in sorted(ref.communes.values(), key=lambda c: c.code):
            value = "" if c.population is None else str(c.population)
            writer.writerow(
                [
                    c.nom,
                    "Population municipale",
                    "population",
                    "Total",
                    "total",
                    "habitants",
                    c.code,
                    POPULATION_YEAR,
                    value,
                ]
            )
    stations = folder / "bornes_recharge_SYNTHETIQUE.csv"
    rng = random.Random(seed)
    with open(stations, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=",")
        writer.writerow(HEADER)
        for c in sorted(ref.communes.values(), key=lambda c: c.code):
            pop = c.population or 0
            points = rng.randint(0, 2 + pop // 800)
            # A few secret cells, as real files have.
            value = "s" if rng.random() < 0.01 else str(points)
            writer.writerow(
                [
                    c.nom,
                    "Points de recharge (SYNTHÉTIQUE, démonstration)",
                    "points_recharge_synthetique",
                    "Total",
                    "total",
                    "points de charge",
                    c.code,
                    2025,
                    value,
                ]
            )
    return [population, stations]
