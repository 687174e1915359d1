from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import psycopg
import pytest

from itte.referential import load
from schemas.clean import CleanObservation
from services.aggregator.store import AggregateStore

pytestmark = pytest.mark.integration

RECOMPUTE = """
WITH per_commune AS (
    SELECT indicateur, sous_champ, annee, commune, sum(valeur) AS v, count(valeur) AS n
    FROM observations GROUP BY 1, 2, 3, 4 HAVING count(valeur) > 0
), levels AS (
    SELECT p.*, l.niveau, l.code FROM per_commune p JOIN communes c ON c.code = p.commune
    CROSS JOIN LATERAL (VALUES ('commune', c.code), ('epci', c.epci),
        ('departement', c.departement), ('region', c.region), ('france', 'FR')) AS l(niveau, code)
    WHERE l.code IS NOT NULL
)
SELECT indicateur, sous_champ, annee, niveau, code, sum(v),
       CASE WHEN niveau = 'commune' THEN sum(n) ELSE count(*) END
FROM levels GROUP BY 1, 2, 3, 4, 5
"""


def recompute(database_url: str) -> dict[tuple, tuple[Decimal, int]]:
    """Aggregates computed from scratch with SQL, independently of the plan code."""
    with psycopg.connect(database_url) as conn:
        return {tuple(r[:5]): (r[5], r[6]) for r in conn.execute(RECOMPUTE)}


def running(database_url: str) -> dict[tuple, tuple[Decimal, int]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT indicateur, sous_champ, annee, niveau, code, valeur, "
            "nb_valeurs FROM aggregates WHERE nb_valeurs > 0 OR valeur <> 0"
        )
        return {tuple(r[:5]): (r[5], r[6]) for r in rows}


@pytest.fixture
def store(database_url: str) -> AggregateStore:
    s = AggregateStore(database_url, load())
    yield s
    s.close()


@pytest.fixture
def obs() -> Callable[..., CleanObservation]:
    def make(
        commune: str,
        valeur: str | None,
        version: int = 1,
        *,
        source: str | None = None,
        indicateur: str = "pop",
        annee: int = 2024,
        rid: str = "r",
    ) -> CleanObservation:
        return CleanObservation(
            record_id=rid,
            indicateur=indicateur,
            annee=annee,
            commune=commune,
            commune_source=source or commune,
            valeur=None if valeur is None else Decimal(valeur),
            marqueur="s" if valeur is None else None,
            version=version,
            unite="u",
        )

    return make
