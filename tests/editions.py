"""A later edition of the map than the shipped one, made from it for the
tests, and its files as `itte referentiel charger` reads them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from common.referential import Commune, Referential, load
from common.referential.registry import table

REF = load()


def next_edition(millesime: int = 2027) -> tuple[Referential, dict[str, str]]:
    """The shipped edition, a year on: in département 01, the smallest
    commune of an EPCI merged into another commune of it, a commune of
    another EPCI moved into a third one, a fourth EPCI gone (its communes to
    the third), and two communes of a fifth merged into a commune nouvelle
    under a new code (``born``, made of ``parts``)."""
    by_epci: dict[str, list[Commune]] = {}
    for c in REF.communes.values():
        if c.departement == "01" and c.epci:
            by_epci.setdefault(c.epci, []).append(c)
    e1, e2, e3, e4, e5 = sorted(by_epci, key=lambda e: (-len(by_epci[e]), e))[:5]
    keep, merged = sorted(by_epci[e1], key=lambda c: c.code)[:2]
    moved = sorted(by_epci[e2], key=lambda c: c.code)[0]
    a, b = sorted(by_epci[e5], key=lambda c: c.code)[:2]
    taken = REF.communes.keys() | REF.former_codes.keys() | REF.ambiguous_codes.keys()
    born = next(f"01{n:03d}" for n in range(999, 0, -1) if f"01{n:03d}" not in taken)
    communes = dict(REF.communes)
    del communes[merged.code], communes[a.code], communes[b.code]
    communes[moved.code] = replace(moved, epci=e3)
    for c in by_epci[e4]:
        communes[c.code] = replace(c, epci=e3)
    communes[born] = replace(
        a, code=born, nom="Val-Nouveau", population=(a.population or 0) + (b.population or 0)
    )
    edition = replace(
        REF,
        version=f"test-{millesime}",
        millesime=millesime,
        communes=communes,
        former_codes={**REF.former_codes, merged.code: keep.code, a.code: born, b.code: born},
        epci={code: name for code, name in REF.epci.items() if code != e4},
    )
    names = {
        "keep": keep.code,
        "merged": merged.code,
        "moved": moved.code,
        "a": a.code,
        "b": b.code,
        "born": born,
    }
    return edition, names | {"e1": e1, "e2": e2, "e3": e3, "gone": e4, "e5": e5}


def files_of(ref: Referential) -> dict[str, bytes]:
    """``ref`` as the files of an edition (common.referential.FILES)."""
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {
        "communes": (
            ["code", "nom", "departement", "region", "epci", "population"],
            [
                [
                    c.code,
                    c.nom,
                    c.departement,
                    c.region,
                    c.epci or "",
                    "" if c.population is None else c.population,
                ]
                for c in ref.communes.values()
            ],
        ),
        "anciens_codes": (
            ["ancien", "actuel"],
            [[old, new] for old, new in ref.former_codes.items()]
            + [[old, new] for old, news in ref.ambiguous_codes.items() for new in news],
        ),
        "epci": (["code", "nom", "type"], [[k, v, ""] for k, v in ref.epci.items()]),
        "departements": (
            ["code", "nom", "region"],
            [[k, v, ""] for k, v in ref.departements.items()],
        ),
        "regions": (["code", "nom"], [[k, v] for k, v in ref.regions.items()]),
    }
    files = {"VERSION": f"{ref.version}\n".encode()}
    for name, (header, rows) in tables.items():
        files[f"{name}.csv.gz"] = table(header, rows)
    return files
