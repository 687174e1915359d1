"""What a comparison reads (``/typologies``, ``/territoires/…/comparaison``):
one level's values of the chosen indicators for one year, and how the
catalogue describes them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from sqlalchemy import Connection, select, tuple_

from common.db import aggregate_values, indicators
from services.api.models import IndicateurCompare, RaisonCode

Wanted = tuple[str, str]  # (indicateur, sous_champ)


class Unanswerable(ValueError):
    """The question names what is not there (an indicator not in the catalogue): a 422."""


def parse_wanted(text: str) -> list[Wanted]:
    wanted: list[Wanted] = []
    for part in text.split(","):
        indicateur, _, sous_champ = part.partition(":")
        if (indicateur, sous_champ or "total") not in wanted:
            wanted.append((indicateur, sous_champ or "total"))
    return wanted


def label(w: Wanted) -> str:
    return w[0] if w[1] == "total" else f"{w[0]}:{w[1]}"


@dataclass(frozen=True)
class Shortfall:
    """How a territory's value falls short of being ranked or grouped."""

    code: RaisonCode
    renseignees: int | None = None
    total: int | None = None

    @property
    def text(self) -> str:
        if self.code == "couverture_incomplete":
            return f"{self.renseignees} of {self.total} communes reported"
        return "secret or not reported" if self.code == "secret" else "no value"


NO_VALUE = Shortfall("sans_valeur")


@dataclass(frozen=True)
class LevelValues:
    """One level's values of the wanted indicators for one year."""

    names: dict[str, str]  # code → name, for every territory with a value
    # Values with the coverage asked (complete, by default), by territory.
    complete: dict[Wanted, dict[str, Decimal]]
    incomplete: dict[tuple[str, Wanted], Shortfall]  # (code, indicator) → how it falls short

    def grouped(self, wanted: list[Wanted]) -> list[str]:
        """Territories complete for every wanted indicator, in code order."""
        return sorted(set.intersection(*(set(self.complete[w]) for w in wanted)))

    def matrix(self, wanted: list[Wanted], codes: list[str]) -> np.ndarray:
        return np.array(
            [[float(self.complete[w][c]) for w in wanted] for c in codes], dtype=float
        ).reshape(len(codes), len(wanted))

    def shortfall(self, code: str, w: Wanted) -> Shortfall:
        return self.incomplete.get((code, w), NO_VALUE)

    def why(self, code: str, wanted: list[Wanted]) -> str:
        """Why ``code`` lacks a complete value of some wanted indicator ("" if it does not)."""
        return "; ".join(
            f"{label(w)}: {self.shortfall(code, w).text}"
            for w in wanted
            if code not in self.complete[w]
        )


def read_level(
    conn: Connection, niveau: str, annee: int, wanted: list[Wanted], couverture_min: float
) -> LevelValues:
    """One level's values of ``wanted`` for ``annee``: kept as complete
    when their coverage reaches ``couverture_min``, else said why not."""
    v = aggregate_values.c
    rows = conn.execute(
        select(
            v.code, v.nom, v.indicateur, v.sous_champ, v.valeur,
            v.communes_renseignees, v.communes_total,
        ).where(
            v.niveau == niveau,
            v.annee == annee,
            tuple_(v.indicateur, v.sous_champ).in_(wanted),
        )
    )  # fmt: skip
    values = LevelValues({}, {w: {} for w in wanted}, {})
    for row in rows:
        values.names[row.code] = row.nom
        w = (row.indicateur, row.sous_champ)
        if row.valeur is None:
            values.incomplete[row.code, w] = Shortfall("secret")
        elif row.communes_renseignees < row.communes_total * couverture_min:
            values.incomplete[row.code, w] = Shortfall(
                "couverture_incomplete", row.communes_renseignees, row.communes_total
            )
        else:
            values.complete[w][row.code] = row.valeur
    return values


def described(conn: Connection, wanted: list[Wanted]) -> list[IndicateurCompare]:
    """The wanted indicators as the catalogue describes them (422 if unknown)."""
    i = indicators.c
    ids = sorted({w[0] for w in wanted})
    found = {
        row.id: row
        for row in conn.execute(select(i.id, i.libelle, i.unite, i.sens).where(i.id.in_(ids)))
    }
    unknown = [x for x in ids if x not in found]
    if unknown:
        raise Unanswerable(f"not in the catalogue: {', '.join(unknown)}")
    return [
        IndicateurCompare(
            indicateur=ind,
            sous_champ=sc,
            libelle=found[ind].libelle,
            unite=found[ind].unite,
            sens=found[ind].sens,
        )
        for ind, sc in wanted
    ]
