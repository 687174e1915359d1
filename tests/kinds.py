"""EPCI of three kinds built into the data: what the comparison tests
(integration and end to end) expect a typology to find again."""

from __future__ import annotations

import random
from decimal import Decimal

from common.referential import load

# (co2, tmax) around these, ±5 %.
KINDS = [(Decimal(100), Decimal(10)), (Decimal(1000), Decimal(30)), (Decimal(5000), Decimal(20))]
GIRONDE_EPCI = sorted(
    {c.epci for c in load().communes.values() if c.departement == "33" and c.epci}
)
MEMBERS = {e: sorted(c.code for c in load().communes.values() if c.epci == e) for e in GIRONDE_EPCI}


def kind_of(epci: str) -> int:
    return GIRONDE_EPCI.index(epci) % 3


def commune_values(seed: int = 7) -> list[tuple[str, str, Decimal]]:
    """(commune, indicator, value) for every commune of the Gironde EPCI: an
    EPCI's co2 all on its first commune (the others 0), its tmax the same in
    every commune; each EPCI's pair of its kind's, ±5 %."""
    rng = random.Random(seed)
    values = []
    for epci in GIRONDE_EPCI:
        co2, tmax = (
            v * Decimal(1 + rng.uniform(-0.05, 0.05)).quantize(Decimal("0.001"))
            for v in KINDS[kind_of(epci)]
        )
        for j, commune in enumerate(MEMBERS[epci]):
            values.append((commune, "co2", co2 if j == 0 else Decimal(0)))
            values.append((commune, "tmax", tmax))
    return values
