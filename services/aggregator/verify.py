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

from common import db
from common.referential import FRANCE

AggKey = tuple[str, str, int, str, str]

# The rules of transform.py, restated as one query over the stored observations
# and the catalogue table.
RECOMPUTE = f"""
WITH per_commune AS (
    SELECT indicateur, sous_champ, annee, commune, coalesce(sum(valeur), 0) AS v,
           count(valeur) AS n, max(unite) AS u
    FROM observations GROUP BY 1, 2, 3, 4
), levels AS (
    SELECT c.code AS commune, l.niveau, l.code FROM communes c
    CROSS JOIN LATERAL (VALUES ('epci', c.epci), ('departement', c.departement),
        ('region', c.region), ('france', '{FRANCE}')) AS l(niveau, code)
    WHERE l.code IS NOT NULL
), pairs AS (
    SELECT id AS target, numerateur AS l, denominateur AS r, agregation AS kind,
           repli_denominateur AS repli
    FROM indicators WHERE agregation = 'ratio'
    UNION ALL
    SELECT id, id, poids, agregation, 0 FROM indicators WHERE agregation = 'moyenne_ponderee'
), paired AS (
    -- The denominator of the year, else of the latest earlier one within repli.
    SELECT DISTINCT ON (p.target, a.sous_champ, a.annee, a.commune)
           p.target AS indicateur, p.kind, a.sous_champ, a.annee, a.commune,
           CASE WHEN p.kind = 'ratio' THEN a.v ELSE a.v * b.v END AS num, b.v AS den,
           a.annee - b.annee AS lag
    FROM pairs p
    JOIN per_commune a ON a.indicateur = p.l AND a.n > 0
    JOIN per_commune b ON (b.indicateur, b.sous_champ, b.commune)
                        = (p.r, a.sous_champ, a.commune) AND b.n > 0
        AND b.annee BETWEEN a.annee - p.repli AND a.annee
    ORDER BY p.target, a.sous_champ, a.annee, a.commune, b.annee DESC
)
SELECT pc.indicateur, pc.sous_champ, pc.annee, 'commune', pc.commune, pc.v, pc.n::int,
       coalesce(x.num, 0), coalesce(x.den, 0), 0, 0, 0
FROM per_commune pc
LEFT JOIN paired x ON x.kind = 'moyenne_ponderee'
    AND (x.indicateur, x.sous_champ, x.annee, x.commune)
      = (pc.indicateur, pc.sous_champ, pc.annee, pc.commune)
UNION ALL
SELECT indicateur, sous_champ, annee, 'commune', commune, 0, 1, num, den,
       (lag > 0)::int, lag, lag * lag
FROM paired WHERE kind = 'ratio'
UNION ALL
SELECT pc.indicateur, pc.sous_champ, pc.annee, l.niveau, l.code,
       CASE i.agregation
           WHEN 'somme' THEN sum(pc.v)
           WHEN 'nombre' THEN count(*) FILTER (WHERE pc.n > 0 AND pc.v <> 0)
           WHEN 'min' THEN coalesce(min(pc.v) FILTER (WHERE pc.n > 0), 0)
           ELSE coalesce(max(pc.v) FILTER (WHERE pc.n > 0), 0)
       END,
       (count(*) FILTER (WHERE pc.n > 0))::int, 0, 0, 0, 0, 0
FROM per_commune pc
JOIN indicators i ON i.id = pc.indicateur AND i.agregation IN ('somme', 'nombre', 'min', 'max')
JOIN levels l ON l.commune = pc.commune
GROUP BY pc.indicateur, pc.sous_champ, pc.annee, l.niveau, l.code, i.agregation
UNION ALL
SELECT x.indicateur, x.sous_champ, x.annee, l.niveau, l.code, 0, count(*)::int, sum(x.num),
       sum(x.den), (count(*) FILTER (WHERE x.lag > 0))::int, sum(x.lag), sum(x.lag * x.lag)
FROM paired x JOIN levels l ON l.commune = x.commune
GROUP BY x.indicateur, x.sous_champ, x.annee, l.niveau, l.code
"""

RUNNING = """
SELECT indicateur, sous_champ, annee, niveau, code, valeur, nb_valeurs, numerateur, denominateur,
       replis, repli_annees, repli_carres
FROM aggregates
"""

# The sums of the EPCIs' published values for the départements they cover
# (epci_sums.py), restated from the communes table: an EPCI lies within one
# département; a département is covered when each of its communes has such
# an EPCI. (sum, EPCIs with a value, EPCIs of the département); a ratio's
# from its terms'.
EPCI_TRUTH = """
WITH inside AS (
    SELECT epci, min(departement) AS departement FROM communes
    WHERE epci IS NOT NULL GROUP BY epci HAVING count(DISTINCT departement) = 1
), covered AS (
    SELECT c.departement, count(DISTINCT c.epci)::int AS total
    FROM communes c LEFT JOIN inside e ON e.epci = c.epci
    GROUP BY c.departement HAVING bool_and(e.epci IS NOT NULL)
)
SELECT p.indicateur, p.sous_champ, p.annee, 'departement', e.departement,
       sum(p.valeur), count(p.valeur)::int, min(c.total)
FROM published_values p
JOIN indicators i ON i.id = p.indicateur AND i.somme_epci
JOIN inside e ON e.epci = p.code
JOIN covered c ON c.departement = e.departement
WHERE p.niveau = 'epci'
GROUP BY p.indicateur, p.sous_champ, p.annee, e.departement
UNION ALL
-- A somme_epci ratio: its terms' sums over the EPCIs that published both.
SELECT t.id, t.sous_champ, t.annee, 'departement', e.departement,
       sum(num.valeur) FILTER (WHERE den.valeur IS NOT NULL)
           / NULLIF(sum(den.valeur) FILTER (WHERE num.valeur IS NOT NULL), 0) * min(t.facteur),
       (count(*) FILTER (WHERE num.valeur IS NOT NULL AND den.valeur IS NOT NULL))::int,
       min(c.total)
FROM (
    SELECT DISTINCT r.id, r.facteur, r.numerateur, r.denominateur, p.sous_champ, p.annee,
           p.code AS epci
    FROM indicators r
    JOIN published_values p ON p.niveau = 'epci'
        AND p.indicateur IN (r.numerateur, r.denominateur)
    WHERE r.agregation = 'ratio' AND r.somme_epci
) t
JOIN inside e ON e.epci = t.epci
JOIN covered c ON c.departement = e.departement
LEFT JOIN published_values num ON (num.indicateur, num.sous_champ, num.annee, num.niveau,
    num.code) = (t.numerateur, t.sous_champ, t.annee, 'epci', t.epci)
LEFT JOIN published_values den ON (den.indicateur, den.sous_champ, den.annee, den.niveau,
    den.code) = (t.denominateur, t.sous_champ, t.annee, 'epci', t.epci)
GROUP BY t.id, t.sous_champ, t.annee, e.departement
"""
# The published values as stored, and the ratios their terms make where a
# territory has both (published.RATIOS): what the rows' valeur_publiee holds.
# (A ratio itself is never published: the cleaner refuses it.)
PUBLISHED_TRUTH = """
SELECT indicateur, sous_champ, annee, niveau, code, valeur, unite FROM published_values
UNION ALL
SELECT i.id, num.sous_champ, num.annee, num.niveau, num.code,
       num.valeur / NULLIF(den.valeur, 0) * i.facteur, i.unite
FROM indicators i
JOIN published_values num ON num.indicateur = i.numerateur
JOIN published_values den
    ON (den.indicateur, den.sous_champ, den.annee, den.niveau, den.code)
     = (i.denominateur, num.sous_champ, num.annee, num.niveau, num.code)
WHERE i.agregation = 'ratio'
"""
RUNNING_EPCI = f"""
SELECT {db.AGGREGATE_KEY}, valeur_epci, epci_renseignes, epci_total FROM aggregates
WHERE epci_total > 0
"""

KEY = f"({db.key_of('a')})"
# What the rules keep in an aggregates row ``x`` (RECOMPUTE's columns).
KEPT = (
    "{x}.valeur, {x}.nb_valeurs, {x}.numerateur, {x}.denominateur, {x}.replis, "
    "{x}.repli_annees, {x}.repli_carres"
)
TRUTH_KEY = f"({db.key_of('t')})"

# The locks, then the truth to rebuild from.
PREPARE = [
    # Before the table's lock: an aggregator takes the numbering lock, then
    # writes (common/db/changes.py NUMBERING_LOCK).
    db.NUMBERING_LOCK,
    # Writers wait; an aggregator transaction in flight applies its deltas on
    # top of the rebuilt rows, which did not see its uncommitted observations.
    "LOCK TABLE aggregates IN EXCLUSIVE MODE",
    f"""CREATE TEMP TABLE truth (indicateur, sous_champ, annee, niveau, code, valeur,
            nb_valeurs, numerateur, denominateur, replis, repli_annees, repli_carres)
        ON COMMIT DROP AS {RECOMPUTE}""",
    f"""CREATE TEMP TABLE epci_truth (indicateur, sous_champ, annee, niveau, code, valeur,
            renseignes, total) ON COMMIT DROP AS {EPCI_TRUTH}""",
    f"CREATE TEMP TABLE published_truth ON COMMIT DROP AS {PUBLISHED_TRUTH}",
]
EPCI_KEY = f"({db.key_of('e')})"
# What each statement did, and the statement.
REBUILD = [
    (
        "updated",
        db.logged(f"""UPDATE aggregates a SET valeur = t.valeur,
            nb_valeurs = t.nb_valeurs, numerateur = t.numerateur, denominateur = t.denominateur,
            replis = t.replis, repli_annees = t.repli_annees, repli_carres = t.repli_carres,
            revision = a.revision + 1, {db.RENUMBER}, updated_at = now()
        FROM truth t WHERE {KEY} = {TRUTH_KEY} AND ({KEPT.format(x="a")})
              IS DISTINCT FROM ({KEPT.format(x="t")})"""),
    ),
    (
        "inserted",
        db.logged(f"""INSERT INTO aggregates AS a (indicateur, sous_champ, annee,
            niveau, code, valeur, nb_valeurs, numerateur, denominateur, replis, repli_annees,
            repli_carres, revision, change_seq)
        SELECT t.indicateur, t.sous_champ, t.annee, t.niveau, t.code, t.valeur,
               t.nb_valeurs, t.numerateur, t.denominateur, t.replis, t.repli_annees,
               t.repli_carres, 1, {db.NEXT_CHANGE}
        FROM truth t WHERE NOT EXISTS (SELECT 1 FROM aggregates a WHERE {KEY} = {TRUTH_KEY})"""),
    ),
    # The values published for territories (published_values, issue #29), and
    # the ratios of published terms (published.RATIOS).
    (
        "published",
        db.logged(f"""UPDATE aggregates a SET valeur_publiee = p.valeur, publiee = true,
            revision = a.revision + 1, {db.RENUMBER}, updated_at = now()
        FROM published_truth p WHERE {KEY} = ({db.key_of("p")})
          AND (a.publiee, a.valeur_publiee) IS DISTINCT FROM (true, p.valeur)"""),
    ),
    (
        "published_inserted",
        db.logged(f"""INSERT INTO aggregates AS a (indicateur, sous_champ, annee, niveau, code,
            valeur, nb_valeurs, numerateur, denominateur, unite, valeur_publiee, publiee,
            revision, change_seq)
        SELECT p.indicateur, p.sous_champ, p.annee, p.niveau, p.code, 0, 0, 0, 0, p.unite,
               p.valeur, true, 1, {db.NEXT_CHANGE}
        FROM published_truth p
        WHERE NOT EXISTS (SELECT 1 FROM aggregates a WHERE {KEY} = ({db.key_of("p")}))"""),
    ),
    (
        "unpublished",
        db.logged(f"""UPDATE aggregates a SET valeur_publiee = NULL, publiee = false,
            revision = a.revision + 1, {db.RENUMBER}, updated_at = now()
        WHERE a.publiee AND NOT EXISTS (
            SELECT 1 FROM published_truth p WHERE {KEY} = ({db.key_of("p")}))"""),
    ),
    # The sums of the EPCIs' published values (epci_sums.py).
    (
        "epci_sums",
        db.logged(f"""UPDATE aggregates a SET valeur_epci = e.valeur,
            epci_renseignes = e.renseignes, epci_total = e.total,
            revision = a.revision + 1, {db.RENUMBER}, updated_at = now()
        FROM epci_truth e WHERE {KEY} = {EPCI_KEY}
          AND (a.valeur_epci, a.epci_renseignes, a.epci_total)
              IS DISTINCT FROM (e.valeur, e.renseignes, e.total)"""),
    ),
    (
        "epci_sums_inserted",
        db.logged(f"""INSERT INTO aggregates AS a (indicateur, sous_champ, annee, niveau, code,
            valeur, nb_valeurs, numerateur, denominateur, valeur_epci, epci_renseignes,
            epci_total, revision, change_seq)
        SELECT e.indicateur, e.sous_champ, e.annee, e.niveau, e.code, 0, 0, 0, 0, e.valeur,
               e.renseignes, e.total, 1, {db.NEXT_CHANGE}
        FROM epci_truth e
        WHERE NOT EXISTS (SELECT 1 FROM aggregates a WHERE {KEY} = {EPCI_KEY})"""),
    ),
    (
        "epci_sums_cleared",
        db.logged(f"""UPDATE aggregates a SET valeur_epci = NULL, epci_renseignes = 0,
            epci_total = 0, revision = a.revision + 1, {db.RENUMBER}, updated_at = now()
        WHERE a.epci_total > 0 AND NOT EXISTS (
            SELECT 1 FROM epci_truth e WHERE {KEY} = {EPCI_KEY})"""),
    ),
    # A row the truth no longer holds (a merged commune's, a row set by hand)
    # is emptied, not deleted, under a new number: its subscribers are told
    # it is gone (valeur null, no commune reporting). An empty row means the
    # same as no row (a pair that came apart leaves one too).
    (
        "emptied",
        db.logged(f"""UPDATE aggregates a SET valeur = 0, nb_valeurs = 0, numerateur = 0,
            denominateur = 0, replis = 0, repli_annees = 0, repli_carres = 0,
            revision = a.revision + 1, {db.RENUMBER}, updated_at = now()
        WHERE NOT EXISTS (SELECT 1 FROM truth t WHERE {KEY} = {TRUTH_KEY})
          AND ({KEPT.format(x="a")}) <> (0, 0, 0, 0, 0, 0, 0)
          AND NOT a.publiee AND a.epci_total = 0"""),
    ),
]
# The change log made to hold exactly the numbered rows again, whatever was
# done to the table by hand (a row deleted, a number set).
RELOG = [
    f"""DELETE FROM aggregate_change_log l WHERE NOT EXISTS (
            SELECT 1 FROM aggregates a WHERE {db.same_change("a", "l")})""",
    f"""INSERT INTO aggregate_change_log (change_seq, {db.AGGREGATE_KEY})
        SELECT a.change_seq, {db.key_of("a")} FROM aggregates a
        WHERE a.change_seq IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM aggregate_change_log l WHERE l.change_seq = a.change_seq)""",
]


@dataclass
class Report:
    checked: int = 0
    differences: list[tuple[AggKey, Any, Any]] = field(default_factory=list)


# valeur, nb_valeurs, numerateur, denominateur, replis, repli_annees, repli_carres
Row = tuple[Decimal, int, Decimal, Decimal, int, int, int]
ROW_FIELDS = (
    "valeur",
    "nb_valeurs",
    "numerateur",
    "denominateur",
    "replis",
    "repli_annees",
    "repli_carres",
)
# A difference's other shapes: what it was checked against, then its fields.
TAGGED_FIELDS = {"publiee": ("valeur",), "somme_epci": ("valeur", "renseignes", "total")}


def described(row: tuple[Any, ...] | None) -> str:
    """One side of a difference, its fields named (for ``itte check``)."""
    if row is None:
        return "none"
    names: tuple[str, ...] = ROW_FIELDS
    if row and isinstance(row[0], str) and row[0] in TAGGED_FIELDS:
        names, row = TAGGED_FIELDS[row[0]], row[1:]
    return " ".join(f"{name}={value}" for name, value in zip(names, row, strict=True))


def _rows(conn: psycopg.Connection[Any], sql: str) -> dict[AggKey, Row]:
    """Non-empty rows: an all-zero row means the same as no row."""
    return {tuple(r[:5]): tuple(r[5:]) for r in conn.execute(sql) if any(r[5:])}


# A published value as its territory's row holds it, and as it was stored.
RUNNING_PUBLISHED = f"SELECT {db.AGGREGATE_KEY}, valeur_publiee FROM aggregates WHERE publiee"
STORED_PUBLISHED = f"SELECT {db.AGGREGATE_KEY}, valeur FROM ({PUBLISHED_TRUTH}) p"


def check(database_url: str) -> Report:
    """Differences between running aggregates and a recomputation from
    scratch, between the published values the rows hold and those stored, and
    between the départements' sums of their EPCIs' values and the stored ones."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        # One snapshot for every read, so a live system compares like with like.
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        truth = _rows(conn, RECOMPUTE)
        running = _rows(conn, RUNNING)
        published = {tuple(r[:5]): ("publiee", r[5]) for r in conn.execute(RUNNING_PUBLISHED)}
        stored = {tuple(r[:5]): ("publiee", r[5]) for r in conn.execute(STORED_PUBLISHED)}
        summed = {tuple(r[:5]): ("somme_epci", *r[5:]) for r in conn.execute(RUNNING_EPCI)}
        sums = {tuple(r[:5]): ("somme_epci", *r[5:]) for r in conn.execute(EPCI_TRUTH)}
    report = Report(
        checked=len(truth.keys() | running.keys())
        + len(published.keys() | stored.keys())
        + len(summed.keys() | sums.keys())
    )
    for key in sorted(truth.keys() | running.keys()):
        if truth.get(key) != running.get(key):
            report.differences.append((key, running.get(key), truth.get(key)))
    for held, truth_of in ((published, stored), (summed, sums)):
        for key in sorted(held.keys() | truth_of.keys()):
            if held.get(key) != truth_of.get(key):
                report.differences.append((key, held.get(key), truth_of.get(key)))
    return report


def rebuild(database_url: str) -> dict[str, int]:
    """Make every aggregate equal to its recomputation; return rows changed."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        return rebuilt(conn)


def rebuilt(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """:func:`rebuild` in the caller's transaction (which commits it)."""
    counts: dict[str, int] = {}
    for statement in PREPARE:
        conn.execute(statement)
    for done, statement in REBUILD:
        counts[done] = conn.execute(statement).rowcount
    for statement in RELOG:
        conn.execute(statement)
    return counts
