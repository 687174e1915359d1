"""Stored values on the aggregator's edition of the map (issue #29).

The cleaner places each record on a commune of its referential, and the
aggregator stores the commune beside the code as sent (``observations.commune``,
``.commune_source``). A new release ships a new edition; ``itte migrate``
loads it (``referential_meta.version``) and leaves the stored values where
they were (``placed_version``). The aggregator of that release, at its
start and before it reads a message, places every stored value again by the
same rule the cleaner follows (``common.referential.locate``), under the
locks of ``itte rebuild``, then recomputes every aggregate that moves: each
is published once, as a rebuild's changes are. What the new edition cannot
take leaves the results for the dead letters, with its reason (and, if it
came by HTTP, its batch's status says so): a value whose
code names no one commune of it (a commune split since), a value that is not
a sum whose commune merged into another (the cleaner refuses those), a value
published for a territory it no longer has. Groupings follow their communes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg

from common.errors import Fatal
from common.referential import Referential, Unplaced, locate
from schemas.catalogue import ADDITIVE
from services.aggregator.intake import STAGE
from services.aggregator.verify import PREPARE, rebuilt

log = logging.getLogger(__name__)
# Aggregators starting together: one places, the others find it done.
PLACING_LOCK = 7_277_415
HELD = "SELECT version, placed_version FROM referential_meta"

# Every code as sent, with where the edition puts it, or why it cannot.
PLACING = """
CREATE TEMP TABLE placements (code text PRIMARY KEY, commune text, reason text, detail text)
ON COMMIT DROP
"""
SOURCES = "SELECT DISTINCT commune_source FROM observations"
# A territory's own value whose territory the edition no longer has.
GONE = """v.niveau <> 'france'
  AND NOT EXISTS (SELECT 1 FROM territories t WHERE (t.niveau, t.code) = (v.niveau, v.code))"""
# What leaves: its values, never its personal fields (hashed or not).
LEAVING = f"""
CREATE TEMP TABLE leaving ON COMMIT DROP AS
SELECT o.indicateur, o.sous_champ, o.annee, o.commune_source, o.record_id,
       coalesce(p.reason, 'ambiguous_code') AS reason,
       coalesce(p.detail, o.commune_source || ' is now part of ' || p.commune
           || '; a ' || coalesce(i.agregation, 'non_agregeable')
           || ' value cannot be combined across its parts') AS detail,
       jsonb_build_object('indicateur', o.indicateur, 'sous_champ', o.sous_champ,
           'annee', o.annee, 'commune', o.commune, 'commune_source', o.commune_source,
           'valeur', o.valeur::text, 'marqueur', o.marqueur, 'unite', o.unite,
           'version', o.version, 'producteur', o.producteur) AS payload
FROM observations o
JOIN placements p ON p.code = o.commune_source
LEFT JOIN indicators i ON i.id = o.indicateur
WHERE p.commune IS NULL
   OR (p.commune <> o.commune_source
       AND coalesce(i.agregation, '') NOT IN ({", ".join(f"'{k}'" for k in sorted(ADDITIVE))}))
"""
PUBLISHED_LEAVING = (
    """
INSERT INTO leaving
SELECT v.indicateur, v.sous_champ, v.annee, NULL, v.record_id, 'unknown_code',
       v.niveau || ' ' || v.code || ' is not in ' || %(version)s,
       jsonb_build_object('indicateur', v.indicateur, 'sous_champ', v.sous_champ,
           'annee', v.annee, 'niveau', v.niveau, 'code', v.code, 'valeur', v.valeur::text,
           'version', v.version, 'producteur', v.producteur)
FROM published_values v
WHERE """
    + GONE
)
# A record pushed over HTTP has an id made of its batch's and its position
# (schemas.clean.record_id): its batch's status shows it in the dead letters.
LETTERS = f"""
INSERT INTO dead_letters (record_id, batch_id, position, stage, reason, detail, payload, at)
SELECT DISTINCT ON (record_id) record_id,
       substring(record_id FROM '^(.+):[0-9]{{6}}$'),
       substring(record_id FROM ':([0-9]{{6}})$')::int + 1,
       '{STAGE}', reason, detail, payload, now()
FROM leaving ORDER BY record_id
ON CONFLICT (record_id) DO UPDATE SET stage = excluded.stage, reason = excluded.reason,
    detail = excluded.detail, payload = excluded.payload, at = excluded.at,
    batch_id = excluded.batch_id, position = excluded.position
RETURNING batch_id, position
"""
# ... and no longer in the results: its bit of batch_progress cleared.
UNMARK = """
UPDATE batch_progress SET clean = set_bit(clean, %s - 1, 0)
WHERE batch_id = %s AND length(clean) >= %s
"""
MOVES = [
    (
        "observations_left",
        """DELETE FROM observations o USING leaving l
        WHERE l.commune_source IS NOT NULL
          AND (o.indicateur, o.sous_champ, o.annee, o.commune_source)
            = (l.indicateur, l.sous_champ, l.annee, l.commune_source)""",
    ),
    (
        "published_left",
        f"DELETE FROM published_values v WHERE {GONE}",
    ),
    (
        "observations_moved",
        """UPDATE observations o SET commune = p.commune FROM placements p
        WHERE p.code = o.commune_source AND p.commune IS NOT NULL AND o.commune <> p.commune""",
    ),
    # A grouping's communes on the new map: a merged one's part becomes the
    # whole (once), a split one's leaves it; then its count.
    (
        "grouping_moved",
        """INSERT INTO groupement_communes (groupement, commune)
        SELECT g.groupement, p.commune FROM groupement_communes g
        JOIN placements p ON p.code = g.commune
        WHERE p.commune IS NOT NULL AND p.commune <> g.commune
        ON CONFLICT DO NOTHING""",
    ),
    (
        "grouping_left",
        """DELETE FROM groupement_communes g
        WHERE NOT EXISTS (SELECT 1 FROM communes c WHERE c.code = g.commune)""",
    ),
    (
        "grouping_counted",
        """UPDATE groupements g SET communes_total = n.total, updated_at = now()
        FROM (SELECT groupement, count(*) AS total FROM groupement_communes
              GROUP BY groupement) n
        WHERE n.groupement = g.code AND g.communes_total <> n.total""",
    ),
]
PLACED = "UPDATE referential_meta SET placed_version = version"


@dataclass
class Placed:
    """What placing the stored values on a new edition did."""

    earlier: str | None
    version: str
    counts: dict[str, int] = field(default_factory=dict)


def bring_onto(database_url: str, ref: Referential) -> Placed | None:
    """Place the stored values on ``ref`` if they are on an earlier
    edition (None when they are on it already). A database whose referential
    is not ``ref``'s is an error: another release's aggregator, or a
    migration not run."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PLACING_LOCK,))
        held = conn.execute(HELD).fetchone()
        if held is None or held[0] != ref.version:
            raise Fatal(
                f"the database holds the referential {held and held[0]}, this aggregator "
                f"{ref.version}: run `itte migrate` of this release first"
            )
        if held[1] == ref.version:
            return None
        return place_all(conn, ref, held[1])


def place_all(conn: psycopg.Connection[Any], ref: Referential, earlier: str | None) -> Placed:
    """Inside the caller's transaction, the database's referential being
    ``ref`` already: every stored value placed on it, every aggregate that
    moves recomputed (and numbered once, as a rebuild's)."""
    placed = Placed(earlier, ref.version)
    for lock in PREPARE[:2]:  # rebuild's: no aggregator writes meanwhile
        conn.execute(lock)
    conn.execute("LOCK TABLE observations, published_values IN EXCLUSIVE MODE")
    placed.counts = _moved(conn, ref)
    placed.counts |= rebuilt(conn)
    conn.execute(PLACED)
    log.info(
        "stored values placed from referential %s onto %s: %s",
        placed.earlier,
        placed.version,
        ", ".join(f"{n} {what}" for what, n in placed.counts.items()),
    )
    return placed


def _moved(conn: psycopg.Connection[Any], ref: Referential) -> dict[str, int]:
    conn.execute(PLACING)
    sources = [code for (code,) in conn.execute(SOURCES)]
    codes = sources + [
        code for (code,) in conn.execute("SELECT DISTINCT commune FROM groupement_communes")
    ]
    with conn.cursor() as cursor, cursor.copy("COPY placements FROM STDIN") as copy:
        for code in dict.fromkeys(codes):
            copy.write_row(where(code, ref))
    conn.execute(LEAVING)
    conn.execute(PUBLISHED_LEAVING, {"version": ref.version})
    letters = conn.execute(LETTERS).fetchall()
    counts = {"dead_letters": len(letters)}
    with conn.cursor() as cursor:  # few: the records a new edition cannot take
        cursor.executemany(UNMARK, [(p, b, p) for b, p in letters if b is not None])
    for what, statement in MOVES:
        counts[what] = conn.execute(statement).rowcount
    return counts


def where(code: str, ref: Referential) -> tuple[str, str | None, str | None, str | None]:
    """(the code, its commune on ``ref``, or no commune and why)."""
    try:
        return code, locate(code, ref)[1], None, None
    except Unplaced as refused:
        return code, None, refused.reason, f"{refused} (referential {ref.version})"
