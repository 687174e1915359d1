"""What a comparison reads: one level's values of the chosen indicators for
one year, kept with the coverage asked, and the typology made of them, kept
while the data stays the same."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from cachetools import LRUCache
from fastapi import HTTPException
from sqlalchemy import Connection, Engine, select, tuple_

from common.db import aggregate_values, indicators
from services.api import analysis
from services.api.comparison_rows import IndicateurCompare

Wanted = tuple[str, str]  # (indicateur, sous_champ)


@dataclass(frozen=True)
class Question:
    niveau: str
    annee: int
    wanted: tuple[Wanted, ...]
    k: int | None
    couverture_min: float = 1.0
    grouped: bool = True  # False: values and ranks only, no k-means


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
class LevelValues:
    """One level's values of the wanted indicators for one year."""

    names: dict[str, str]  # code → name, for every territory with a value
    # Values with the coverage asked (complete, by default), by territory.
    complete: dict[Wanted, dict[str, Decimal]]
    incomplete: dict[tuple[str, Wanted], str]  # (code, indicator) → how it falls short

    def grouped(self, wanted: list[Wanted]) -> list[str]:
        """Territories complete for every wanted indicator, in code order."""
        return sorted(set.intersection(*(set(self.complete[w]) for w in wanted)))

    def matrix(self, wanted: list[Wanted], codes: list[str]) -> np.ndarray:
        return np.array(
            [[float(self.complete[w][c]) for w in wanted] for c in codes], dtype=float
        ).reshape(len(codes), len(wanted))

    def why(self, code: str, wanted: list[Wanted]) -> str:
        """Why ``code`` lacks a complete value of some wanted indicator ("" if it does not)."""
        return "; ".join(
            f"{label(w)}: {self.incomplete.get((code, w), 'no value')}"
            for w in wanted
            if code not in self.complete[w]
        )


def read_level(conn: Connection, q: Question) -> LevelValues:
    v, wanted = aggregate_values.c, list(q.wanted)
    rows = conn.execute(
        select(
            v.code, v.nom, v.indicateur, v.sous_champ, v.valeur,
            v.communes_renseignees, v.communes_total,
        ).where(
            v.niveau == q.niveau,
            v.annee == q.annee,
            tuple_(v.indicateur, v.sous_champ).in_(wanted),
        )
    )  # fmt: skip
    values = LevelValues({}, {w: {} for w in wanted}, {})
    for row in rows:
        values.names[row.code] = row.nom
        w = (row.indicateur, row.sous_champ)
        if row.valeur is None:
            values.incomplete[row.code, w] = "secret or not reported"
        elif row.communes_renseignees < row.communes_total * q.couverture_min:
            values.incomplete[row.code, w] = (
                f"{row.communes_renseignees} of {row.communes_total} communes reported"
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
        raise HTTPException(422, f"not in the catalogue: {', '.join(unknown)}")
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


@dataclass(frozen=True)
class Study:
    """What both endpoints compute: the values, and the typology if one can be made."""

    values: LevelValues
    codes: list[str]  # grouped territories, in code order
    typology: analysis.Typology | None
    why_not: str | None

    def size(self) -> int:
        return 1 + sum(len(v) for v in self.values.complete.values())


class Studies:
    """Studies kept while the data stays the same: ``changed`` moves when it
    may have (None: unknown, compute every time). The number is read before
    the values, so a study is never kept under a later number than its data.
    Only the current number's studies are kept, at most ``values`` values in
    all (the 34,969 communes on 8 indicators are 280,000)."""

    def __init__(self, changed: Callable[[], int | None], values: int = 1_000_000) -> None:
        self._changed = changed
        self._kept: LRUCache[Question, Study] = LRUCache(maxsize=values, getsizeof=Study.size)
        self._generation: int | None = None
        self._lock = threading.Lock()  # the routes run in a thread pool

    def get(self, engine: Engine, q: Question) -> tuple[Study, list[IndicateurCompare]]:
        generation = self._changed()
        with engine.connect() as conn:
            described_ = described(conn, list(q.wanted))
            kept = self._kept_for(generation, q)
            if kept is not None:
                return kept, described_
            values = read_level(conn, q)
        wanted = list(q.wanted)
        codes = values.grouped(wanted)
        typology: analysis.Typology | None = None
        why_not: str | None = "no typology asked"
        if q.grouped:
            try:
                typology, why_not = analysis.typology(values.matrix(wanted, codes), q.k), None
            except analysis.NotComparable as exc:
                typology, why_not = None, str(exc)
        study = Study(values, codes, typology, why_not)
        self._keep(generation, q, study)
        return study, described_

    def _kept_for(self, generation: int | None, q: Question) -> Study | None:
        with self._lock:
            if generation != self._generation:  # the data moved on: what is kept is stale
                self._kept.clear()
                self._generation = generation
            return self._kept.get(q) if generation is not None else None

    def _keep(self, generation: int | None, q: Question, study: Study) -> None:
        with self._lock:
            if generation is not None and generation == self._generation:
                with contextlib.suppress(ValueError):  # larger than all that may be kept
                    self._kept[q] = study
