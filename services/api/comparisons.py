"""Comparing territories: what a question computes (values, a typology),
kept while the data stays the same, and how it is answered. The reads are
in ``reads/comparaison.py``, the arithmetic in ``analysis.py``, the routes
in ``routes/comparaison.py``."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from cachetools import LRUCache
from sqlalchemy import Engine

from schemas.aggregates import Niveau
from services.api import analysis
from services.api.models import (
    Comparaison,
    Exclu,
    Groupe,
    GroupeMembres,
    IndicateurCompare,
    Membre,
    Pair,
    Rang,
    Territoire,
    Typologie,
    exact_text,
    number,
)
from services.api.reads.comparaison import LevelValues, Wanted, described, label, read_level


@dataclass(frozen=True)
class Question:
    niveau: Niveau
    annee: int
    wanted: tuple[Wanted, ...]
    k: int | None
    couverture_min: float = 1.0
    grouped: bool = True  # False: values and ranks only, no k-means


@dataclass(frozen=True)
class Study:
    """What both endpoints compute: the values, and the typology if one can be made."""

    values: LevelValues
    codes: list[str]  # grouped territories, in code order
    typology: analysis.Typology | None
    why_not: str | None
    described: list[IndicateurCompare]  # read at each request (the catalogue may change)

    def size(self) -> int:
        return 1 + sum(len(v) for v in self.values.complete.values())


def study(values: LevelValues, q: Question, described_: list[IndicateurCompare]) -> Study:
    wanted = list(q.wanted)
    codes = values.grouped(wanted)
    typology: analysis.Typology | None = None
    why_not: str | None = "no typology asked"
    if q.grouped:
        try:
            typology, why_not = analysis.typology(values.matrix(wanted, codes), q.k), None
        except analysis.NotComparable as exc:
            typology, why_not = None, str(exc)
    return Study(values, codes, typology, why_not, described_)


class Busy(RuntimeError):
    """As many studies as allowed are being computed: a 503, retry later."""


# Studies computed at once per worker, and how long one waits for its turn:
# a study of the communes reads and groups 35,000 territories (seconds of
# CPU), and any anonymous reader can ask for one the cache does not hold.
AT_ONCE = 2
TURN_SECONDS = 5.0


class KeptStudies:
    """Studies kept while the data stays the same: ``changed`` moves when it
    may have (None: unknown, compute every time). The number is read before
    the values, so a study is never kept under a later number than its data.
    Only the current number's studies are kept, at most ``values`` values in
    all (the 34,969 communes on 8 indicators are 280,000). At most
    ``at_once`` are computed at a time; a question that waits ``turn``
    seconds for its turn gets :class:`Busy`."""

    def __init__(
        self,
        changed: Callable[[], int | None],
        values: int = 1_000_000,
        *,
        at_once: int = AT_ONCE,
        turn: float = TURN_SECONDS,
    ) -> None:
        self._changed = changed
        self._kept: LRUCache[Question, Study] = LRUCache(maxsize=values, getsizeof=Study.size)
        self._generation: int | None = None
        self._lock = threading.Lock()  # the routes run in a thread pool
        self._computing = threading.BoundedSemaphore(at_once)
        self._turn = turn

    def get(self, engine: Engine, q: Question) -> Study:
        """The study of ``q``, kept or computed. A question waiting for its
        turn holds no database connection, and the computation (k-means,
        seconds of CPU) runs after its connection went back to the pool:
        waiting and computing studies never take the other routes' connections."""
        generation = self._changed()
        kept = self._kept_for(generation, q)
        if kept is not None:
            with engine.connect() as conn:
                return replace(kept, described=described(conn, list(q.wanted)))
        if not self._computing.acquire(timeout=self._turn):
            raise Busy("too many comparisons being computed, retry later")
        try:
            with engine.connect() as conn:
                described_ = described(conn, list(q.wanted))
                values = read_level(conn, q.niveau, q.annee, list(q.wanted), q.couverture_min)
            found = study(values, q, described_)
        finally:
            self._computing.release()
        self._keep(generation, q, found)
        return found

    def _kept_for(self, generation: int | None, q: Question) -> Study | None:
        with self._lock:
            if generation != self._generation:  # the data moved on: what is kept is stale
                self._kept.clear()
                self._generation = generation
            return self._kept.get(q) if generation is not None else None

    def _keep(self, generation: int | None, q: Question, found: Study) -> None:
        with self._lock:
            if generation is not None and generation == self._generation:
                with contextlib.suppress(ValueError):  # larger than all that may be kept
                    self._kept[q] = found


def centre(typology: analysis.Typology, number_: int, wanted: list[Wanted]) -> dict[str, float]:
    return {label(w): float(typology.centres[number_ - 1][j]) for j, w in enumerate(wanted)}


def typologie(s: Study, q: Question) -> Typologie:
    """The groups of a study that has a typology."""
    assert s.typology is not None
    t, names, wanted = s.typology, s.values.names, list(q.wanted)
    return Typologie(
        niveau=q.niveau,
        annee=q.annee,
        indicateurs=s.described,
        k=t.k,
        k_choisi=t.chosen,
        silhouette=round(t.silhouette, 4),
        groupes=[
            GroupeMembres(
                groupe=n,
                taille=t.groups.count(n),
                centre=centre(t, n, wanted),
                membres=[
                    Membre(code=c, nom=names[c])
                    for c, g in zip(s.codes, t.groups, strict=True)
                    if g == n
                ],
            )
            for n in range(1, t.k + 1)
        ],
        exclus=[
            Exclu(code=c, nom=names[c], raison=s.values.why(c, wanted))
            for c in sorted(set(names) - set(s.codes))
        ],
    )


def territory_lines(s: Study, wanted: list[Wanted]) -> Iterator[dict[str, Any]]:
    """A typology's CSV: the grouped territories, then those left out."""
    assert s.typology is not None
    values, names = s.values, s.values.names
    for code, group in zip(s.codes, s.typology.groups, strict=True):
        exact = {label(w): exact_text(values.complete[w][code]) for w in wanted}
        yield {"code": code, "nom": names[code], "groupe": group, **exact, "raison": None}
    for code in sorted(set(names) - set(s.codes)):
        known = {label(w): exact_text(values.complete[w].get(code)) for w in wanted}
        yield {"code": code, "nom": names[code], "groupe": None, **known,
               "raison": values.why(code, wanted)}  # fmt: skip


def comparaison(s: Study, q: Question, territoire: Territoire, pairs: int) -> Comparaison:
    """One territory in a study: its group, nearest peers and ranks."""
    wanted = list(q.wanted)
    rangs = ranks(s.values, wanted, s.described, territoire.code)
    t, codes = s.typology, s.codes
    if t is None or territoire.code not in codes:
        why = s.why_not or s.values.why(territoire.code, wanted)
        return Comparaison(
            territoire=territoire, annee=q.annee, indicateurs=s.described, groupe=None,
            k=t.k if t else None, pairs=[], rangs=rangs, raison=why or "no value",
        )  # fmt: skip
    i = codes.index(territoire.code)
    group = t.groups[i]
    complete = s.values.complete
    return Comparaison(
        territoire=territoire,
        annee=q.annee,
        indicateurs=s.described,
        groupe=Groupe(groupe=group, taille=t.groups.count(group), centre=centre(t, group, wanted)),
        k=t.k,
        pairs=[
            Pair(
                code=codes[j],
                nom=s.values.names[codes[j]],
                distance=round(d, 6),
                valeurs={label(w): number(complete[w][codes[j]]) for w in wanted},
            )
            for j, d in analysis.nearest(t.standardized, i, pairs)
        ],
        rangs=rangs,
    )


def ranks(
    values: LevelValues, wanted: list[Wanted], described_: list[IndicateurCompare], code: str
) -> list[Rang]:
    """The territory's rank for each indicator, among the territories of its
    level with a complete value of that indicator."""
    rangs = []
    for w, d in zip(wanted, described_, strict=True):
        ranked = values.complete[w]  # the territories with a value to rank
        if code not in ranked:
            short = values.shortfall(code, w)
            rangs.append(
                Rang(
                    indicateur=w[0], sous_champ=w[1], valeur=None, rang=None,
                    sur=len(ranked), meilleur_que=None, raison=short.text,
                    raison_code=short.code, communes_renseignees=short.renseignees,
                    communes_total=short.total,
                )
            )  # fmt: skip
            continue
        r = analysis.rank(list(ranked.values()), list(ranked).index(code), d.sens)
        rangs.append(
            Rang(
                indicateur=w[0], sous_champ=w[1], valeur=number(ranked[code]),
                rang=r.rang, sur=r.sur, meilleur_que=r.meilleur_que,
            )
        )  # fmt: skip
    return rangs
