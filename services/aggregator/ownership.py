"""Handing observations over from one producer to another (``itte proprietaire``).

Values published for a territory above the commune (``published_values``)
go with them: all of the indicator's, or, for a territory, those published
for that territory itself.

An observation belongs to the producer whose record was stored first
(``transform.split_by_owner``); another producer's records for it are
dead-lettered ``other_producer``. When a source changes hands, an operator
moves the ownership of an indicator's observations (for a year, a
territory) from one producer to another; each hand-over is kept in
``ownership_transfers``. Values and aggregates do not change, so nothing is
published.

The aggregator decides a record's owner under the locks of its places
(``store.lock_bucket``): the transfer takes them all, in the same order, so
that no batch decides on an owner the transfer is changing.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from services.aggregator.store import LOCK_BUCKETS, LOCK_NAMESPACE

LEVELS = ("commune", "epci", "departement", "region")

# The communes of the territory, from the referential table (``communes``).
MATCHING = """
FROM observations o
WHERE o.indicateur = %(indicateur)s
  AND o.producteur IS NOT DISTINCT FROM %(ancien)s
  AND (%(annee)s::int IS NULL OR o.annee = %(annee)s)
  AND (%(niveau)s::text IS NULL
       OR (%(niveau)s = 'commune' AND o.commune = %(code)s)
       OR o.commune IN (
           SELECT c.code FROM communes c
           WHERE (%(niveau)s = 'epci' AND c.epci = %(code)s)
              OR (%(niveau)s = 'departement' AND c.departement = %(code)s)
              OR (%(niveau)s = 'region' AND c.region = %(code)s)))
"""


# The values published for territories, by the same filters.
MATCHING_PUBLISHED = """
FROM published_values p
WHERE p.indicateur = %(indicateur)s
  AND p.producteur IS NOT DISTINCT FROM %(ancien)s
  AND (%(annee)s::int IS NULL OR p.annee = %(annee)s)
  AND (%(niveau)s::text IS NULL OR (p.niveau, p.code) = (%(niveau)s, %(code)s))
"""


@dataclass(frozen=True)
class Transfer:
    """The observations of ``indicateur`` owned by ``ancien`` (None: records
    with no producer, from files or straight from Kafka), for one year and
    one territory if given, to become ``nouveau``'s."""

    indicateur: str
    ancien: str | None
    nouveau: str | None
    annee: int | None = None
    territoire: tuple[str, str] | None = None  # (niveau, code)

    def __post_init__(self) -> None:
        if self.territoire is not None and self.territoire[0] not in LEVELS:
            raise ValueError(f"a territory is one of {', '.join(LEVELS)}, then ':' and a code")
        if self.ancien == self.nouveau:
            raise ValueError("the observations already belong to this producer")

    @property
    def parameters(self) -> dict[str, object]:
        niveau, code = self.territoire or (None, None)
        return {
            "indicateur": self.indicateur,
            "ancien": self.ancien,
            "nouveau": self.nouveau,
            "annee": self.annee,
            "niveau": niveau,
            "code": code,
        }


def count(database_url: str, transfer: Transfer) -> int:
    """How many observations the transfer would hand over (changes nothing)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            f"SELECT (SELECT count(*) {MATCHING}) + (SELECT count(*) {MATCHING_PUBLISHED})",
            transfer.parameters,
        ).fetchone()
    return int(row[0]) if row else 0


def hand_over(database_url: str, transfer: Transfer) -> int:
    """Hand the observations over, atomically, and keep a trace; their number."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, b) FROM generate_series(0, %s - 1) AS b",
            (LOCK_NAMESPACE, LOCK_BUCKETS),
        )
        moved = conn.execute(
            "UPDATE observations SET producteur = %(nouveau)s, updated_at = now() "
            f"WHERE (indicateur, sous_champ, annee, commune_source) IN ("
            f"SELECT o.indicateur, o.sous_champ, o.annee, o.commune_source {MATCHING})",
            transfer.parameters,
        ).rowcount
        moved += conn.execute(
            "UPDATE published_values SET producteur = %(nouveau)s, updated_at = now() "
            f"WHERE (indicateur, sous_champ, annee, niveau, code) IN ("
            f"SELECT p.indicateur, p.sous_champ, p.annee, p.niveau, p.code {MATCHING_PUBLISHED})",
            transfer.parameters,
        ).rowcount
        conn.execute(
            "INSERT INTO ownership_transfers "
            "(indicateur, annee, niveau, code, ancien, nouveau, observations) "
            "VALUES (%(indicateur)s, %(annee)s, %(niveau)s, %(code)s, %(ancien)s, "
            "%(nouveau)s, %(moved)s)",
            {**transfer.parameters, "moved": moved},
        )
    return moved
