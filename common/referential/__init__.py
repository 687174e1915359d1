"""The Code Officiel Géographique shipped with itte (see ``data/VERSION``).

Rebuilt by ``scripts/build_referential.py`` from ``@etalab/decoupage-administratif``
(Etalab; data under the Licence Ouverte 2.0).
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

FRANCE = "FR"
COMMUNE_CODE = re.compile(r"^(\d{5}|2[AB]\d{3})$")


def _rows(name: str) -> Iterator[dict[str, str]]:
    path = resources.files(__name__).joinpath("data", f"{name}.csv.gz")
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8", newline="") as text:
        yield from csv.DictReader(text)


def is_renumbering(former: str, current: str) -> bool:
    """Corsica's communes were renumbered in 1976 (20xxx → 2Axxx or 2Bxxx): the
    same commune under a new code, not a merge of several."""
    return former[:2] == "20" and current[:2] in ("2A", "2B") and former[2:] == current[2:]


@dataclass(frozen=True, slots=True)
class Commune:
    code: str
    nom: str
    departement: str
    region: str
    epci: str | None
    population: int | None


# The arrondissements municipaux of Paris, Lyon and Marseille (COG codes
# 75101–75120, 69381–69389, 13201–13216): sources publish by them, and each
# is a part of its commune, as a former commune is of the one it merged into.
ARRONDISSEMENTS = {
    "75056": [f"751{n:02d}" for n in range(1, 21)],
    "69123": [f"6938{n}" for n in range(1, 10)],
    "13055": [f"132{n:02d}" for n in range(1, 17)],
}


@dataclass(frozen=True)
class Referential:
    version: str
    communes: dict[str, Commune]
    former_codes: dict[str, str]  # former code -> the one current commune it became
    ambiguous_codes: dict[str, tuple[str, ...]]  # former code -> several candidates
    epci: dict[str, str]
    departements: dict[str, str]
    regions: dict[str, str]
    # arrondissement municipal -> its commune (ARRONDISSEMENTS)
    arrondissements: dict[str, str] = field(default_factory=dict)


# Each referential's table, made once: a service's stores share it (35,000
# communes, 140,000 tuples).
_ANCESTORS: dict[int, tuple[Referential, dict[str, list[tuple[str, str]]]]] = {}


def ancestors(ref: Referential) -> dict[str, list[tuple[str, str]]]:
    """Every commune's territories above it, as (niveau, code): départements and
    régions come from the commune itself, never from its EPCI (89 EPCI span
    several départements). Do not change the table: it is shared."""
    held = _ANCESTORS.get(id(ref))
    if held is not None and held[0] is ref:
        return held[1]
    table: dict[str, list[tuple[str, str]]] = {}
    for c in ref.communes.values():
        levels = [("epci", c.epci)] if c.epci else []
        levels += [("departement", c.departement), ("region", c.region), ("france", FRANCE)]
        table[c.code] = levels
    _ANCESTORS[id(ref)] = (ref, table)
    return table


@cache
def load() -> Referential:
    """Parse the shipped files once per process."""
    version = resources.files(__name__).joinpath("data", "VERSION").read_text("utf-8").strip()
    communes = {
        r["code"]: Commune(
            code=r["code"],
            nom=r["nom"],
            departement=r["departement"],
            region=r["region"],
            epci=r["epci"] or None,
            population=int(r["population"]) if r["population"] else None,
        )
        for r in _rows("communes")
    }
    candidates: dict[str, set[str]] = {}
    for r in _rows("anciens_codes"):
        candidates.setdefault(r["ancien"], set()).add(r["actuel"])
    return Referential(
        version=version,
        communes=communes,
        former_codes={old: next(iter(cur)) for old, cur in candidates.items() if len(cur) == 1},
        ambiguous_codes={
            old: tuple(sorted(cur)) for old, cur in candidates.items() if len(cur) > 1
        },
        epci={r["code"]: r["nom"] for r in _rows("epci")},
        departements={r["code"]: r["nom"] for r in _rows("departements")},
        regions={r["code"]: r["nom"] for r in _rows("regions")},
        arrondissements={
            part: commune
            for commune, parts in ARRONDISSEMENTS.items()
            if commune in communes
            for part in parts
        },
    )


class Unplaced(ValueError):
    """A code that names no one commune of the referential: ``reason`` names
    the rule (``invalid_commune``, ``ambiguous_code``, ``unknown_code``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def locate(code: str, ref: Referential) -> tuple[str, str]:
    """(the code as sent, normalized; the current commune it is part of).
    The cleaner places every record by it, and the ingestor checks a
    producer's territories by it, so both read a code alike."""
    normalized = code.strip().upper()
    if normalized.isdigit() and len(normalized) < 5:
        normalized = normalized.zfill(5)  # spreadsheets drop the leading zero
    if not COMMUNE_CODE.match(normalized):
        raise Unplaced("invalid_commune", "not a commune code (5 digits, or 2A/2B and 3 digits)")
    if normalized in ref.communes:
        return normalized, normalized
    current = ref.former_codes.get(normalized)
    if current is not None and is_renumbering(normalized, current):
        return current, current  # the same commune under its new number: not a merge
    if current is not None:
        return normalized, current
    if normalized in ref.arrondissements:  # a part of Paris, Lyon or Marseille
        return normalized, ref.arrondissements[normalized]
    if normalized in ref.ambiguous_codes:
        raise Unplaced(
            "ambiguous_code",
            f"former code {normalized} now belongs to several "
            f"communes: {', '.join(ref.ambiguous_codes[normalized])}",
        )
    raise Unplaced(
        "unknown_code",
        f"{normalized} is neither a commune, a former code nor an arrondissement municipal "
        f"in {ref.version}",
    )
