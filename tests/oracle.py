"""The truth, computed from scratch by the rules of docs/catalogue.md: no ``plan``, no
deltas, no code of the aggregator. Tests judge the aggregator against this."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal, localcontext

from schemas.clean import CleanObservation
from services.aggregator.rules import AggregationRules

AggKey = tuple[str, str, int, str, str]  # indicateur, sous_champ, annee, niveau, code
# valeur, nb_valeurs, numerateur, denominateur, and over the paired communes
# whose denominator is of an earlier year: how many, the sum of their years
# back, the sum of those squared.
Row = tuple[Decimal, int, Decimal, Decimal, int, int, int]
ObsKey = tuple[str, str, int, str]
Ancestors = Callable[[str], Iterable[tuple[str, str]]]


def rank(r: CleanObservation) -> tuple[bool, int, int, str]:
    """The version rule, as docs/producers.md states it."""
    return (r.version_explicite, r.version, r.recu, r.record_id)


def winners(batches: Iterable[list[CleanObservation]]) -> dict[ObsKey, CleanObservation]:
    """The observation kept per key, from every record received, batch by batch:
    the key's owner is the producer of its earliest record in the first batch
    that had one; among the owner's records the highest rank wins."""
    owner: dict[ObsKey, str | None] = {}
    best: dict[ObsKey, CleanObservation] = {}
    for batch in batches:
        earliest: dict[ObsKey, CleanObservation] = {}
        for r in batch:
            seen = earliest.get(r.key)
            if seen is None or (r.recu, r.record_id) < (seen.recu, seen.record_id):
                earliest[r.key] = r
        for key, r in earliest.items():
            owner.setdefault(key, r.producteur)
        for r in batch:
            if r.producteur == owner[r.key] and (r.key not in best or rank(r) > rank(best[r.key])):
                best[r.key] = r
    return best


def aggregates(
    observations: Iterable[CleanObservation], ancestors: Ancestors, rules: AggregationRules
) -> dict[AggKey, Row]:
    """Every aggregate's row, from the kept observations, by each kind's rule;
    rows that would be all zero are left out."""
    with localcontext() as exact:
        exact.prec = 200
        return _aggregates(observations, ancestors, rules)


def _aggregates(
    observations: Iterable[CleanObservation], ancestors: Ancestors, rules: AggregationRules
) -> dict[AggKey, Row]:
    per_commune: dict[ObsKey, list[Decimal | None]] = defaultdict(list)
    for o in observations:
        per_commune[(o.indicateur, o.sous_champ, o.annee, o.commune)].append(o.valeur)
    value = {
        k: (sum((v for v in vs if v is not None), Decimal(0)), sum(v is not None for v in vs))
        for k, vs in per_commune.items()
    }
    truth: dict[AggKey, list] = {}

    def row(key: AggKey) -> list:
        return truth.setdefault(key, [Decimal(0), 0, Decimal(0), Decimal(0), [], 0, 0, 0])

    for (i, s, y, c), (v, n) in value.items():
        r = row((i, s, y, "commune", c))
        r[0], r[1] = v, n
        kind = rules.kind(i)
        for level in ancestors(c):
            if kind in ("somme", "nombre", "min", "max"):
                a = row((i, s, y, *level))
                a[1] += n > 0
                a[0] += v if kind == "somme" else int(kind == "nombre" and n > 0 and v != 0)
                if n > 0:
                    a[4].append(v)
    pair_rules = {r for rs in rules.pairs_by_member.values() for r in rs}
    for rule in pair_rules:
        for (i, s, y, c), (lv, ln) in value.items():
            if i != rule.left or ln == 0:
                continue
            # The denominator of the year, else of the latest earlier one
            # within the catalogue's repli_denominateur (docs/catalogue.md).
            found = [
                (y - year, value[(rule.right, s, year, c)][0])
                for year in range(y, y - rule.repli - 1, -1)
                if value.get((rule.right, s, year, c), (0, 0))[1] > 0
            ]
            if not found:
                continue
            lag, rv = found[0]
            num, den = (lv, rv) if rule.kind == "ratio" else (lv * rv, rv)
            for level in [("commune", c), *ancestors(c)]:
                r = row((rule.target, s, y, *level))
                r[2] += num
                r[3] += den
                r[5] += lag > 0
                r[6] += lag
                r[7] += lag * lag
                if not (level[0] == "commune" and rule.kind == "moyenne_ponderee"):
                    r[1] += 1
    result: dict[AggKey, Row] = {}
    for key, (v, n, num, den, members, *years_back) in truth.items():
        kind = rules.kind(key[0])
        if key[3] != "commune" and kind in ("min", "max"):
            v = (min if kind == "min" else max)(members, default=Decimal(0))
        kept = (v, n, num, den, *years_back)
        if any(kept):
            result[key] = kept
    return result
