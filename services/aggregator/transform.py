"""Pure aggregation: which observations to write and how each aggregate moves.

Given a batch of clean observations and what the database holds for their
keys, :func:`plan` returns the observation writes and the exact change
(delta) of every aggregate they touch. Of one producer's records for a key
the highest ``CleanObservation.order`` wins whatever the arrival order; an
older or equal one changes nothing, so duplicates and replays are harmless.
Another producer's records for a key are refused (``Plan.foreign``). Values
are Decimals: sums stay exact under any sequence of corrections.

By aggregation kind, above the commune:
- somme: valeur is the sum of commune values;
- nombre: valeur counts communes with a non-zero value;
- min, max: the store settles valeur from what the batch did to the members
  (``Plan.extremes``, ``ExtremeChange.settle``), and recomputes it from the
  members' rows only when the batch took away a value that may have been the
  extreme (a corrected extreme cannot be undone by a delta);
- ratio, moyenne_ponderee: numerateur and denominateur sum the contributions
  of communes where both members are present (see ``rules.PairRule``); a
  ratio's denominator may be of an earlier year (``repli_denominateur``), so
  a change of a denominator moves the ratios of the years that use it;
- non_agregeable: nothing.
``nb_valeurs`` counts reporting communes (for pairs: paired communes); at
commune level it counts the sources with a value (several for a merged
commune reported under its former codes).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, localcontext
from typing import NamedTuple, ParamSpec, TypeVar

from schemas.clean import CleanObservation
from schemas.limits import EXACT_PRECISION
from services.aggregator.rules import AggregationRules, Member, Pairing, PairRule

ObsKey = tuple[str, str, int, str]  # indicateur, sous_champ, annee, commune_source
CommuneKey = tuple[str, str, int, str]  # indicateur, sous_champ, annee, commune
AggKey = tuple[str, str, int, str, str]  # indicateur, sous_champ, annee, niveau, code
Ancestors = Callable[[str], Iterable[tuple[str, str]]]  # commune -> (niveau, code)...

ZERO = Decimal(0)
P = ParamSpec("P")
R = TypeVar("R")
# Values within schemas/limits.py need far fewer digits than this; a sum that
# would still need more raises instead of rounding.
EXACT = Context(
    prec=EXACT_PRECISION,
    Emax=999_999,
    Emin=-999_999,
    traps=[Inexact, InvalidOperation, DivisionByZero],
)


# NamedTuples and slots: plan() makes several of these per record.
class Stored(NamedTuple):
    """What the database holds for one observation key."""

    valeur: Decimal | None
    version_explicite: bool
    version: int
    recu: int
    record_id: str
    producteur: str | None

    @property
    def order(self) -> tuple[bool, int, int, str]:
        return (self.version_explicite, self.version, self.recu, self.record_id)


class CommuneState(NamedTuple):
    """A commune row as stored: the sum of its sources and how many have a value."""

    valeur: Decimal
    nb: int


@dataclass(slots=True)
class Delta:
    valeur: Decimal = ZERO
    nb_valeurs: int = 0
    unite: str | None = None
    numerateur: Decimal = ZERO
    denominateur: Decimal = ZERO
    # Paired communes whose denominator is of an earlier year: how many, and
    # the sums of their years back and of those squared (all additive; the
    # row's one year, when its communes share it, follows: rules.Pairing).
    replis: int = 0
    repli_annees: int = 0
    repli_carres: int = 0
    # A commune seen for the first time creates its rows even when it brings
    # no value (a secret cell): the API then shows it as missing, not absent.
    creates_row: bool = False

    def add(
        self, valeur: Decimal, nb_valeurs: int, unite: str | None, creates_row: bool = False
    ) -> None:
        self.valeur += valeur
        self.nb_valeurs += nb_valeurs
        self.unite = unite or self.unite
        self.creates_row = self.creates_row or creates_row

    def add_pair(self, new: Pairing, old: Pairing) -> None:
        self.numerateur += new.numerateur - old.numerateur
        self.denominateur += new.denominateur - old.denominateur
        self.replis += (new.lag > 0) - (old.lag > 0)
        self.repli_annees += new.lag - old.lag
        self.repli_carres += new.lag**2 - old.lag**2

    @property
    def is_zero(self) -> bool:
        return (
            self.valeur == 0
            and self.nb_valeurs == 0
            and self.numerateur == 0
            and self.denominateur == 0
            and self.replis == 0
            and self.repli_annees == 0
            and self.repli_carres == 0
            and not self.creates_row
        )


@dataclass(slots=True)
class ExtremeChange:
    """What a batch did to the member communes of one min or max aggregate:
    the best value it gave a member (``best``), and the best value a member
    held before and no longer holds (``lost``: corrected to a worse value, or
    made secret)."""

    kind: str  # "min" | "max"
    best: Decimal | None = None
    lost: Decimal | None = None

    def better(self, x: Decimal, y: Decimal) -> bool:
        return x < y if self.kind == "min" else x > y

    def member(self, before: CommuneState, after: CommuneState) -> None:
        if after.nb > 0 and (self.best is None or self.better(after.valeur, self.best)):
            self.best = after.valeur
        held = before.nb > 0 and (after.nb == 0 or self.better(before.valeur, after.valeur))
        if held and (self.lost is None or self.better(before.valeur, self.lost)):
            self.lost = before.valeur

    def settle(self, current: Decimal, reporting: bool) -> Decimal | None:
        """The aggregate's new value, from the one it has before the batch
        (``reporting``: whether a member had a value then); None when only a
        recomputation from the members can tell: the batch took away a value
        as good as the extreme and gave none as good. A first load never
        needs one."""
        if not reporting:
            return ZERO if self.best is None else self.best  # nb_valeurs says "none"
        if self.best is not None and not self.better(current, self.best):
            return self.best  # as good as every member left untouched
        if self.lost is not None and not self.better(current, self.lost):
            return None
        return current


@dataclass
class Plan:
    writes: list[CleanObservation] = field(default_factory=list)
    deltas: dict[AggKey, Delta] = field(default_factory=dict)
    extremes: dict[AggKey, ExtremeChange] = field(default_factory=dict)
    stale: int = 0  # older or equal versions: ignored
    # Records of another producer than the observation's owner: refused.
    foreign: list[CleanObservation] = field(default_factory=list)


def latest_per_key(records: Iterable[CleanObservation]) -> dict[ObsKey, CleanObservation]:
    latest: dict[ObsKey, CleanObservation] = {}
    for record in records:
        key = record.key
        held = latest.get(key)
        if held is None or record.order > held.order:
            latest[key] = record
    return latest


def split_by_owner(
    records: list[CleanObservation], stored: Mapping[ObsKey, Stored]
) -> tuple[list[CleanObservation], list[CleanObservation]]:
    """An observation belongs to the producer whose record was stored first (in
    a batch, the earliest accepted); another producer's records for it are
    refused: nobody overwrites or freezes another's value (an operator hands
    a value over, ``itte proprietaire``)."""
    keys = [r.key for r in records]
    claims: dict[ObsKey, CleanObservation] = {}
    for key, r in zip(keys, records, strict=True):
        if key not in stored:
            first = claims.get(key)
            if first is None or (r.recu, r.record_id) < (first.recu, first.record_id):
                claims[key] = r
    kept: list[CleanObservation] = []
    foreign: list[CleanObservation] = []
    for key, r in zip(keys, records, strict=True):
        held = stored.get(key)
        owner = held.producteur if held is not None else claims[key].producteur
        if r.producteur == owner:
            kept.append(r)
        else:
            foreign.append(r)
    return kept, foreign


def commune_keys_needed(
    records: Iterable[CleanObservation], rules: AggregationRules
) -> set[CommuneKey]:
    """The commune rows :func:`plan` must be given: the batch's and those its
    pairs are made with (a ratio's denominator, of earlier years too)."""
    keys: set[CommuneKey] = set()
    # (indicator, year) -> the rows its pairs need, each once: a batch holds
    # few of them, and a denominator's overlap across its ratios and years.
    needed: dict[tuple[str, int], tuple[tuple[str, int], ...]] = {}
    for r in records:
        keys.add((r.indicateur, r.sous_champ, r.annee, r.commune))
        rows = needed.get((r.indicateur, r.annee))
        if rows is None:
            rows = needed[(r.indicateur, r.annee)] = tuple(
                {
                    row
                    for rule in rules.pairs_by_member.get(r.indicateur, ())
                    for row in rule.rows_needed(r.indicateur, r.annee)
                }
            )
        if rows:
            keys.update((indicateur, r.sous_champ, annee, r.commune) for indicateur, annee in rows)
    return keys


def exact(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` under EXACT: its Decimal arithmetic never rounds in
    silence (it raises ``decimal.Inexact``, and the store's caller isolates
    the record)."""

    @functools.wraps(function)
    def within(*args: P.args, **kwargs: P.kwargs) -> R:
        with localcontext(EXACT):
            return function(*args, **kwargs)

    return within


@exact
def plan(
    records: list[CleanObservation],
    stored: Mapping[ObsKey, Stored],
    communes: Mapping[CommuneKey, CommuneState],
    ancestors: Ancestors,
    rules: AggregationRules,
) -> Plan:
    """``communes``: the rows that exist among :func:`commune_keys_needed`."""
    owned, foreign = split_by_owner(records, stored)
    latest = latest_per_key(owned)
    result = Plan(stale=len(owned) - len(latest), foreign=foreign)
    by_commune = _by_commune(latest, stored, result)
    deltas: dict[AggKey, Delta] = defaultdict(Delta)
    after = dict(communes)
    for ck, change in by_commune.items():
        before = communes.get(ck)
        if before is not None and change.is_zero:
            continue
        b = before or NO_VALUE
        a = after[ck] = CommuneState(b.valeur + change.valeur, b.nb + change.nb_valeurs)
        indicateur, sous_champ, annee, commune = ck
        created = before is None
        deltas[(indicateur, sous_champ, annee, "commune", commune)].add(
            change.valeur, change.nb_valeurs, change.unite, created
        )
        kind = rules.kind(indicateur)
        if kind == "somme":
            valeur = change.valeur
        elif kind == "nombre":
            valeur = Decimal(_nonzero(a) - _nonzero(b))
        elif kind in ("min", "max"):
            valeur = ZERO  # recomputed by the store
        else:
            continue  # not aggregable, or aggregated as a pair below
        reporting = (a.nb > 0) - (b.nb > 0)
        extreme = kind in ("min", "max")
        for niveau, code in ancestors(commune):
            agg_key = (indicateur, sous_champ, annee, niveau, code)
            deltas[agg_key].add(valeur, reporting, change.unite, created)
            if extreme:
                found = result.extremes.get(agg_key)
                if found is None:
                    found = result.extremes[agg_key] = ExtremeChange(kind)
                found.member(b, a)
    _pair_deltas(by_commune, communes, after, ancestors, rules, deltas)
    result.deltas = {k: d for k, d in sorted(deltas.items()) if not d.is_zero}
    result.extremes = dict(sorted(result.extremes.items()))
    return result


NO_VALUE = CommuneState(ZERO, 0)


def _by_commune(
    latest: Mapping[ObsKey, CleanObservation], stored: Mapping[ObsKey, Stored], result: Plan
) -> dict[CommuneKey, Delta]:
    """What the newer versions change in each commune's value; the writes
    and the stale versions go to ``result``."""
    by_commune: dict[CommuneKey, Delta] = defaultdict(Delta)
    for key, new in latest.items():
        old = stored.get(key)
        if old is not None and old.order >= new.order:
            result.stale += 1
            continue
        result.writes.append(new)
        old_value = old.valeur if old is not None else None
        by_commune[(new.indicateur, new.sous_champ, new.annee, new.commune)].add(
            (new.valeur or ZERO) - (old_value or ZERO),
            (new.valeur is not None) - (old_value is not None),
            new.unite,
        )
    return by_commune


def _nonzero(state: CommuneState) -> int:
    return int(state.nb > 0 and state.valeur != 0)


def _members(
    table: Mapping[CommuneKey, CommuneState], rule: PairRule, place: tuple[str, int, str]
) -> tuple[Member, list[Member]]:
    """The rule's left member's row at ``place`` and its right member's rows for
    the years it may use, from ``table``."""
    sous_champ, annee, commune = place
    return _row(table, (rule.left, sous_champ, annee, commune)), [
        _row(table, (rule.right, sous_champ, year, commune)) for year in rule.right_years(annee)
    ]


def _row(table: Mapping[CommuneKey, CommuneState], key: CommuneKey) -> Member:
    found = table.get(key)
    return None if found is None else (found.valeur, found.nb)


def _pair_deltas(
    changed: Iterable[CommuneKey],
    before: Mapping[CommuneKey, CommuneState],
    after: Mapping[CommuneKey, CommuneState],
    ancestors: Ancestors,
    rules: AggregationRules,
    deltas: dict[AggKey, Delta],
) -> None:
    done: set[tuple[str, str, int, str]] = set()
    for indicateur, sous_champ, annee, commune in changed:
        for rule in rules.pairs_by_member.get(indicateur, ()):
            for year in rule.years_moved(indicateur, annee):
                place = (sous_champ, year, commune)
                # A pair needs both members: without one of them before or
                # after (``after`` holds every row of ``before``), nothing
                # moves. Most records of a first load stop here.
                if (rule.left, *place) not in after or not any(
                    (rule.right, sous_champ, y, commune) in after for y in rule.right_years(year)
                ):
                    continue
                if (rule.target, *place) in done:
                    continue
                done.add((rule.target, *place))
                old = rule.contribution(*_members(before, rule, place))
                new = rule.contribution(*_members(after, rule, place))
                if old == new:
                    continue
                for niveau, code in [("commune", commune), *ancestors(commune)]:
                    delta = deltas[(rule.target, sous_champ, year, niveau, code)]
                    delta.add_pair(new, old)
                    # The averaged indicator's own commune row counts its sources.
                    if not (niveau == "commune" and rule.kind == "moyenne_ponderee"):
                        delta.nb_valeurs += new.paired - old.paired
