"""How each indicator aggregates, derived once from the catalogue (pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from schemas.catalogue import Catalogue

NOT_AGGREGABLE = "non_agregeable"


Member = tuple[Decimal, int] | None  # a member's commune row: (valeur, nb_valeurs), or none


class Pairing(NamedTuple):
    """What a commune adds to its territories' pair sums, and how many years
    before the value's its denominator is (``lag``: 0 when not paired)."""

    numerateur: Decimal
    denominateur: Decimal
    paired: int
    lag: int = 0


UNPAIRED = Pairing(Decimal(0), Decimal(0), 0)


@dataclass(frozen=True)
class PairRule:
    """A value made of two indicators of the same commune and sub-field.

    ratio: target = numerateur / denominateur; moyenne_ponderee: target is the
    averaged indicator itself (left) weighted by ``poids`` (right). A ratio's
    denominator is of the value's year, or where the commune has none that
    year, of its latest earlier year within ``repli`` (the catalogue's
    ``repli_denominateur``).
    """

    target: str
    left: str
    right: str
    kind: str  # "ratio" or "moyenne_ponderee"
    repli: int = 0

    def years_moved(self, member: str, annee: int) -> range:
        """The target's years a change of ``member``'s value in ``annee`` may move:
        a denominator stands in for up to ``repli`` later years."""
        return range(annee, annee + (self.repli if member == self.right else 0) + 1)

    def right_years(self, annee: int) -> range:
        """The denominator's years the target's value of ``annee`` may use, in the
        order they are tried."""
        return range(annee, annee - self.repli - 1, -1)

    def rows_needed(self, member: str, annee: int) -> Iterator[tuple[str, int]]:
        """The (indicator, year) of the commune rows a change of ``member``'s
        value in ``annee`` is paired against."""
        for year in self.years_moved(member, annee):
            yield self.left, year
            for right_year in self.right_years(year):
                yield self.right, right_year

    def contribution(self, left: Member, rights: Iterable[Member]) -> Pairing:
        """What a commune adds to its territories: its left member's row and its
        right member's rows for :meth:`right_years`."""
        if left is None or left[1] == 0:
            return UNPAIRED
        for lag, right in enumerate(rights):
            if right is not None and right[1] > 0:
                if self.kind == "ratio":
                    return Pairing(left[0], right[0], 1, lag)
                return Pairing(left[0] * right[0], right[0], 1, lag)
        return UNPAIRED


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
                rule = PairRule(
                    ind.id, ind.numerateur, ind.denominateur, "ratio", ind.repli_denominateur
                )
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
