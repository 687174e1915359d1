"""Operators' safety net: recompute every aggregate from the stored observations.

``check`` compares the running aggregates with that recomputation;
``rebuild`` makes them equal (bumping the revision of what it changes, so the
outbox relay publishes the corrections). Both read the same SQL, written
independently of the incremental code in ``transform.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg

AggKey = tuple[str, str, int, str, str]

# Commune rows sum their sources; above, a commune counts once if it has a value.
RECOMPUTE = """
WITH per_commune AS (
    SELECT indicateur, sous_champ, annee, commune, coalesce(sum(valeur), 0) AS v,
           count(valeur) AS n, max(unite) AS u
    FROM observations GROUP BY 1, 2, 3, 4
), levels AS (
    SELECT p.*, l.niveau, l.code FROM per_commune p JOIN communes c ON c.code = p.commune
    CROSS JOIN LATERAL (VALUES ('epci', c.epci), ('departement', c.departement),
        ('region', c.region), ('france', 'FR')) AS l(niveau, code)
    WHERE l.code IS NOT NULL
)
SELECT indicateur, sous_champ, annee, 'commune' AS niveau, commune AS code, v AS valeur,
       n::int AS nb_valeurs, u AS unite
FROM per_commune
UNION ALL
SELECT indicateur, sous_champ, annee, niveau, code, sum(v), count(*) FILTER (WHERE n > 0)::int,
       max(u)
FROM levels GROUP BY 1, 2, 3, 4, 5
"""

RUNNING = """
SELECT indicateur, sous_champ, annee, niveau, code, valeur, nb_valeurs FROM aggregates
"""

KEY = "(a.indicateur, a.sous_champ, a.annee, a.niveau, a.code)"
TRUTH_KEY = "(t.indicateur, t.sous_champ, t.annee, t.niveau, t.code)"

REBUILD = [
    # Writers wait; an aggregator transaction in flight applies its deltas on
    # top of the rebuilt rows, which did not see its uncommitted observations.
    "LOCK TABLE aggregates IN EXCLUSIVE MODE",
    f"CREATE TEMP TABLE truth ON COMMIT DROP AS {RECOMPUTE}",
    f"""UPDATE aggregates a SET valeur = t.valeur, nb_valeurs = t.nb_valeurs,
            revision = a.revision + 1, updated_at = now()
        FROM truth t WHERE {KEY} = {TRUTH_KEY}
          AND (a.valeur, a.nb_valeurs) IS DISTINCT FROM (t.valeur, t.nb_valeurs)""",
    f"""INSERT INTO aggregates (indicateur, sous_champ, annee, niveau, code, valeur,
            nb_valeurs, unite, revision)
        SELECT t.indicateur, t.sous_champ, t.annee, t.niveau, t.code, t.valeur,
               t.nb_valeurs, t.unite, 1
        FROM truth t WHERE NOT EXISTS (SELECT 1 FROM aggregates a WHERE {KEY} = {TRUTH_KEY})""",
    f"""DELETE FROM aggregates a
        WHERE NOT EXISTS (SELECT 1 FROM truth t WHERE {KEY} = {TRUTH_KEY})""",
]


PAST = {"UPDATE": "updated", "INSERT": "inserted", "DELETE": "deleted"}


@dataclass
class Report:
    checked: int = 0
    differences: list[tuple[AggKey, Any, Any]] = field(default_factory=list)


def _rows(conn: psycopg.Connection[Any], sql: str) -> dict[AggKey, tuple[Decimal, int]]:
    return {tuple(r[:5]): (r[5], r[6]) for r in conn.execute(sql)}


def check(database_url: str) -> Report:
    """Differences between running aggregates and a recomputation from scratch."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        # One snapshot for both reads, so a live system compares like with like.
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        truth = _rows(conn, RECOMPUTE)
        running = _rows(conn, RUNNING)
    report = Report(checked=len(truth.keys() | running.keys()))
    for key in sorted(truth.keys() | running.keys()):
        if truth.get(key) != running.get(key):
            report.differences.append((key, running.get(key), truth.get(key)))
    return report


def rebuild(database_url: str) -> dict[str, int]:
    """Make every aggregate equal to its recomputation; return rows changed."""
    counts: dict[str, int] = {}
    with psycopg.connect(database_url) as conn, conn.transaction():
        for statement in REBUILD:
            cursor = conn.execute(statement)
            verb = statement.split()[0]
            if verb in PAST:
                counts[PAST[verb]] = cursor.rowcount
    return counts
