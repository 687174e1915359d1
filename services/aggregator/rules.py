"""How each indicator aggregates, derived once from the catalogue (pure)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from schemas.catalogue import Catalogue

NOT_AGGREGABLE = "non_agregeable"


@dataclass(frozen=True)
class PairRule:
    """A value made of two indicators of the same commune, sub-field and year.

    ratio: target = numerateur / denominateur; moyenne_ponderee: target is the
    averaged indicator itself (left) weighted by ``poids`` (right).
    """

    target: str
    left: str
    right: str
    kind: str  # "ratio" or "moyenne_ponderee"

    def contribution(
        self, left: tuple[Decimal, int] | None, right: tuple[Decimal, int] | None
    ) -> tuple[Decimal, Decimal, int]:
        """(numerator, denominator, paired) a commune adds to its territories."""
        if left is None or right is None or left[1] == 0 or right[1] == 0:
            return Decimal(0), Decimal(0), 0
        if self.kind == "ratio":
            return left[0], right[0], 1
        return left[0] * right[0], right[0], 1


@dataclass(frozen=True)
class AggregationRules:
    kinds: dict[str, str]
    pairs_by_member: dict[str, tuple[PairRule, ...]]
    # Whose départements are served their EPCIs' published values summed.
    somme_epci: frozenset[str] = frozenset()

    def ratios_of(self, indicator: str) -> tuple[str, ...]:
        """The ratios ``indicator`` is the numerator or denominator of."""
        return tuple(r.target for r in self.pairs_by_member.get(indicator, ()) if r.kind == "ratio")

    @classmethod
    def from_catalogue(cls, catalogue: Catalogue) -> AggregationRules:
        pairs: dict[str, list[PairRule]] = defaultdict(list)
        for ind in catalogue.indicateurs.values():
            rule = None
            if ind.agregation == "ratio" and ind.numerateur and ind.denominateur:
                rule = PairRule(ind.id, ind.numerateur, ind.denominateur, "ratio")
            elif ind.agregation == "moyenne_ponderee" and ind.poids:
                rule = PairRule(ind.id, ind.id, ind.poids, "moyenne_ponderee")
            if rule is not None:
                pairs[rule.left].append(rule)
                if rule.right != rule.left:
                    pairs[rule.right].append(rule)
        return cls(
            kinds={i.id: i.agregation for i in catalogue.indicateurs.values()},
            pairs_by_member={k: tuple(v) for k, v in pairs.items()},
            somme_epci=frozenset(i.id for i in catalogue.indicateurs.values() if i.somme_epci),
        )

    def kind(self, indicator: str) -> str:
        """Indicators outside the catalogue are kept at commune level only."""
        return self.kinds.get(indicator, NOT_AGGREGABLE)

    def partners(self, indicator: str) -> set[str]:
        """Indicators whose commune values a change of ``indicator`` needs."""
        return {m for r in self.pairs_by_member.get(indicator, ()) for m in (r.left, r.right)}
