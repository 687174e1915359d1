"""In-memory stand-ins for the aggregator's Postgres state (unit tests only)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from schemas.clean import CleanObservation
from services.aggregator.transform import AggKey, Ancestors, ObsKey, Stored, plan


class MemoryAggregates:
    """Applies plans the way AggregateStore does, to dictionaries."""

    def __init__(self, ancestors: Ancestors) -> None:
        self.ancestors = ancestors
        self.observations: dict[ObsKey, CleanObservation] = {}
        self.aggregates: dict[AggKey, tuple[Decimal, int]] = {}
        self.stale = 0

    def apply(self, records: list[CleanObservation]) -> None:
        stored = {k: Stored(o.valeur, o.version, o.record_id) for k, o in self.observations.items()}
        counts = {(*k[:3], k[4]): n for k, (_, n) in self.aggregates.items() if k[3] == "commune"}
        result = plan(records, stored, counts, self.ancestors)
        self.stale += result.stale
        for record in result.writes:
            self.observations[record.key] = record
        for key, delta in result.deltas.items():
            value, count = self.aggregates.get(key, (Decimal(0), 0))
            self.aggregates[key] = (value + delta.valeur, count + delta.nb_valeurs)

    def recompute(self) -> dict[AggKey, tuple[Decimal, int]]:
        """The truth: aggregates computed from scratch from the current observations."""
        per_commune: dict[tuple[str, str, int, str], list[Decimal]] = defaultdict(list)
        for o in self.observations.values():
            if o.valeur is not None:
                per_commune[(o.indicateur, o.sous_champ, o.annee, o.commune)].append(o.valeur)
        truth: dict[AggKey, tuple[Decimal, int]] = {}
        for (i, s, a, commune), values in per_commune.items():
            truth[(i, s, a, "commune", commune)] = (sum(values, Decimal(0)), len(values))
            for niveau, code in self.ancestors(commune):
                value, count = truth.get((i, s, a, niveau, code), (Decimal(0), 0))
                truth[(i, s, a, niveau, code)] = (value + sum(values, Decimal(0)), count + 1)
        return truth

    def nonzero(self) -> dict[AggKey, tuple[Decimal, int]]:
        return {k: v for k, v in self.aggregates.items() if v != (Decimal(0), 0)}
