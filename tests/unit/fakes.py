"""In-memory stand-ins for the aggregator's Postgres state (unit tests only)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from schemas.clean import CleanObservation
from services.aggregator.rules import AggregationRules
from services.aggregator.transform import (
    AggKey,
    Ancestors,
    CommuneState,
    ObsKey,
    Stored,
    commune_keys_needed,
    plan,
)

Row = tuple[Decimal, int, Decimal, Decimal]  # valeur, nb_valeurs, numerateur, denominateur
EMPTY: Row = (Decimal(0), 0, Decimal(0), Decimal(0))


class MemoryAggregates:
    """Applies plans the way AggregateStore does, to dictionaries."""

    def __init__(self, ancestors: Ancestors, rules: AggregationRules) -> None:
        self.ancestors = ancestors
        self.rules = rules
        self.observations: dict[ObsKey, CleanObservation] = {}
        self.aggregates: dict[AggKey, Row] = {}
        self.stale = 0

    def apply(self, records: list[CleanObservation]) -> None:
        stored = {k: Stored(o.valeur, o.version, o.record_id) for k, o in self.observations.items()}
        needed = commune_keys_needed(records, self.rules)
        communes = {
            k: CommuneState(row[0], row[1])
            for k in needed
            if (row := self.aggregates.get((*k[:3], "commune", k[3]))) is not None
        }
        result = plan(records, stored, communes, self.ancestors, self.rules)
        self.stale += result.stale
        for record in result.writes:
            self.observations[record.key] = record
        for key, d in result.deltas.items():
            v, n, num, den = self.aggregates.get(key, EMPTY)
            self.aggregates[key] = (
                v + d.valeur,
                n + d.nb_valeurs,
                num + d.numerateur,
                den + d.denominateur,
            )
        for key, kind in result.extremes.items():
            members = [
                row[0]
                for k, row in self.aggregates.items()
                if k[:3] == key[:3]
                and k[3] == "commune"
                and row[1] > 0
                and (key[3], key[4]) in self.ancestors(k[4])
            ]
            extreme = (min if kind == "min" else max)(members, default=Decimal(0))
            self.aggregates[key] = (extreme, *self.aggregates[key][1:])

    def recompute(self) -> dict[AggKey, Row]:
        """The truth, from scratch, by the rules of the README (not by deltas)."""
        per_commune: dict[tuple[str, str, int, str], list[Decimal | None]] = defaultdict(list)
        for o in self.observations.values():
            per_commune[(o.indicateur, o.sous_champ, o.annee, o.commune)].append(o.valeur)
        value = {
            k: (sum((v for v in vs if v is not None), Decimal(0)), sum(v is not None for v in vs))
            for k, vs in per_commune.items()
        }
        truth: dict[AggKey, list] = {}

        def row(key: AggKey) -> list:
            return truth.setdefault(key, [Decimal(0), 0, Decimal(0), Decimal(0), []])

        for (i, s, y, c), (v, n) in value.items():
            r = row((i, s, y, "commune", c))
            r[0], r[1] = v, n
            kind = self.rules.kind(i)
            for level in self.ancestors(c):
                if kind in ("somme", "nombre", "min", "max"):
                    a = row((i, s, y, *level))
                    a[1] += n > 0
                    a[0] += v if kind == "somme" else int(kind == "nombre" and n > 0 and v != 0)
                    if n > 0:
                        a[4].append(v)
        pair_rules = {r for rs in self.rules.pairs_by_member.values() for r in rs}
        for rule in pair_rules:
            for (i, s, y, c), (lv, ln) in value.items():
                if i != rule.left or ln == 0:
                    continue
                rv, rn = value.get((rule.right, s, y, c), (Decimal(0), 0))
                if rn == 0:
                    continue
                num, den = (lv, rv) if rule.kind == "ratio" else (lv * rv, rv)
                for level in [("commune", c), *self.ancestors(c)]:
                    r = row((rule.target, s, y, *level))
                    r[2] += num
                    r[3] += den
                    if not (level[0] == "commune" and rule.kind == "moyenne_ponderee"):
                        r[1] += 1
        result: dict[AggKey, Row] = {}
        for key, (v, n, num, den, members) in truth.items():
            kind = self.rules.kind(key[0])
            if key[3] != "commune" and kind in ("min", "max"):
                v = (min if kind == "min" else max)(members, default=Decimal(0))
            result[key] = (v, n, num, den)
        return result

    def nonempty(self, table: dict[AggKey, Row]) -> dict[AggKey, Row]:
        return {k: v for k, v in table.items() if v != EMPTY}
