"""Demo data for ``make up``: real populations, plus clearly synthetic indicators.

Several years: the population of each edition of the COG from 2023 (real,
keyed on that edition's codes, which itte places on today's map) and two
synthetic indicators walked back from 2026. The current year comes first, in
files of its own, so the page has it while the history loads."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

from common import referential

YEAR = 2026  # populations attached to the 2026 COG edition
HISTORY = (2023, 2024, 2025)  # the years before it, each with its edition's populations
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


def _population(year: int = YEAR) -> Iterator[list[object]]:
    ref = referential.load() if year == YEAR else referential.edition(year)
    for c in sorted(ref.communes.values(), key=lambda c: c.code):
        value = "" if c.population is None else c.population
        yield [
            c.nom,
            "Population municipale",
            "population",
            "Total",
            "total",
            "habitants",
            c.code,
            year,
            value,
        ]


def _history() -> Iterator[list[object]]:
    for year in HISTORY:
        yield from _population(year)


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


# The synthetic indicators with a history: their label and unit.
WALKED = {
    "points_recharge_synthetique": ("Points de recharge", "points de charge"),
    "part_menages_chauffage_bois_synthetique": ("Part des ménages chauffés au bois", "%"),
}


def _walked_back(seed: int) -> Iterator[list[object]]:
    """Charging points and wood heating in the years before 2026, from each
    commune's 2026 value: fewer points each year back, more wood heating."""
    rng = random.Random(seed + 1)
    current = {(row[6], row[2]): (row[0], row[8]) for row in _synthetic(seed) if row[2] in WALKED}
    for (code, variable), (name, value) in sorted(current.items()):
        label, unit = WALKED[variable]
        for year in sorted(HISTORY, reverse=True):
            if variable == "points_recharge_synthetique" and value != "s":
                value = round(int(str(value)) / rng.uniform(1.1, 1.4))
            elif variable == "part_menages_chauffage_bois_synthetique":
                value = round(min(60.0, float(str(value)) + rng.uniform(0, 2)), 1)
            yield [
                name,
                f"{label} {SYNTHETIC}",
                variable,
                "Total",
                "total",
                unit,
                code,
                year,
                value,
            ]


def write_demo(folder: Path, seed: int = 2026) -> list[Path]:
    """Write the demo files (long format, as the source database exports it):
    the current year first, then the history."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "population.csv": (";", _population()),
        "indicateurs_SYNTHETIQUES.csv": (",", _synthetic(seed)),
        "population_historique.csv": (";", _history()),
        "indicateurs_SYNTHETIQUES_historique.csv": (",", _walked_back(seed)),
    }
    for name, (delimiter, rows) in files.items():
        with open(folder / name, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, delimiter=delimiter)
            writer.writerow(HEADER)
            writer.writerows(rows)
    return [folder / name for name in files]
