"""Postgres adapter: apply a batch of clean observations in one transaction.

Everything a batch changes (observations and aggregates) commits together, so
a crash before the commit changes nothing and a replay after it changes
nothing either (the versions already won). Aggregate rows count as the outbox:
each row a batch changes takes the next number of the change feed
(``change_seq``, written to ``aggregate_change_log`` by ``db.logged``), and
the statement that numbers it returns its message (changes.py), which the
relay publishes once the transaction has committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from common import db, referential
from common.errors import Fatal
from schemas.clean import CleanObservation, place_hash
from services.aggregator import published as published_values
from services.aggregator.changes import PUBLISHED, Change, changes_of
from services.aggregator.epci_sums import EpciSums
from services.aggregator.ports import ApplyResult, EditionMoved
from services.aggregator.rules import AggregationRules
from services.aggregator.transform import (
    ZERO,
    AggKey,
    CommuneKey,
    CommuneState,
    ObsKey,
    Plan,
    Stored,
    commune_keys_needed,
    plan,
)

# Rows looked up by key, one primary-key probe each (``LATERAL … LIMIT 1``,
# which the planner cannot turn into a join). As a plain join on the keys,
# Postgres chose a hash join over the whole table for a batch's thousands
# of keys: every batch read every row, so a bulk load slowed as it grew
# (6,000 keys among 200,000 rows: 100 ms against 16 ms; docs/measurements.md).
SELECT_STORED = """
SELECT o.indicateur, o.sous_champ, o.annee, o.commune_source, o.valeur, o.version_explicite,
       o.version, o.recu, o.record_id, o.producteur
FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[]) AS k(i, s, a, c)
CROSS JOIN LATERAL (
    SELECT * FROM observations o
    WHERE (o.indicateur, o.sous_champ, o.annee, o.commune_source) = (k.i, k.s, k.a, k.c)
    LIMIT 1
) o
"""

SELECT_COMMUNES = """
SELECT a.indicateur, a.sous_champ, a.annee, a.code, a.valeur, a.nb_valeurs
FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[]) AS k(i, s, a, c)
CROSS JOIN LATERAL (
    SELECT * FROM aggregates a
    WHERE (a.indicateur, a.sous_champ, a.annee, a.niveau, a.code)
        = (k.i, k.s, k.a, 'commune', k.c)
    LIMIT 1
) a
"""

# Batches are written with COPY into temporary tables, then merged in a
# statement or two each: faster than row-by-row upserts (docs/measurements.md).
# ``fresh`` rows are known to be absent: the batch looked them up under the
# locks of their places, and only a transaction holding those locks inserts
# them. They are inserted plainly, at about half the cost of an
# ``ON CONFLICT`` upsert; the others are merged. Should a row appear anyway,
# the insert fails on the primary key, the transaction changes nothing, and
# the retry (errors.isolate) looks the rows up again.
# A clean observation as a staging row: OBSERVATION_COLUMNS with their types.
OBSERVATION_ROW_TYPES = """
    indicateur text, sous_champ text, annee int, commune_source text, commune text,
    valeur numeric, marqueur text, unite text, libelle_indicateur text,
    libelle_sous_champ text, version bigint, version_explicite boolean, recu bigint,
    record_id text, pii jsonb, pii_key_id text, producteur text"""

TEMP_TABLES = f"""
CREATE TEMP TABLE IF NOT EXISTS incoming_observations (
    {OBSERVATION_ROW_TYPES}, fresh boolean
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS incoming_deltas (
    indicateur text, sous_champ text, annee int, niveau text, code text, valeur numeric,
    nb_valeurs int, unite text, numerateur numeric, denominateur numeric, replis int,
    repli_annees bigint, repli_carres bigint, ord int, fresh boolean
) ON COMMIT DELETE ROWS;
"""

OBSERVATION_COLUMNS = (
    "indicateur, sous_champ, annee, commune_source, commune, valeur, marqueur, unite, "
    "libelle_indicateur, libelle_sous_champ, version, version_explicite, recu, record_id, pii, "
    "pii_key_id, producteur"
)

INSERT_OBSERVATIONS = f"""
INSERT INTO observations ({OBSERVATION_COLUMNS})
SELECT {OBSERVATION_COLUMNS} FROM incoming_observations WHERE fresh
"""

# A newer version of the same producer replaces the observation; anything else
# changes nothing.
REPLACE_OBSERVATION = """
ON CONFLICT (indicateur, sous_champ, annee, commune_source) DO UPDATE SET
    commune = EXCLUDED.commune, valeur = EXCLUDED.valeur, marqueur = EXCLUDED.marqueur,
    unite = EXCLUDED.unite, libelle_indicateur = EXCLUDED.libelle_indicateur,
    libelle_sous_champ = EXCLUDED.libelle_sous_champ, version = EXCLUDED.version,
    version_explicite = EXCLUDED.version_explicite, recu = EXCLUDED.recu,
    record_id = EXCLUDED.record_id, pii = EXCLUDED.pii, pii_key_id = EXCLUDED.pii_key_id,
    updated_at = now()
WHERE observations.producteur IS NOT DISTINCT FROM EXCLUDED.producteur
  AND (observations.version_explicite, observations.version, observations.recu,
       observations.record_id COLLATE "C")
    < (EXCLUDED.version_explicite, EXCLUDED.version, EXCLUDED.recu, EXCLUDED.record_id COLLATE "C")
"""

MERGE_OBSERVATIONS = f"""
INSERT INTO observations ({OBSERVATION_COLUMNS})
SELECT {OBSERVATION_COLUMNS} FROM incoming_observations WHERE NOT fresh
{REPLACE_OBSERVATION}"""

AGGREGATE_COLUMNS = (
    "indicateur, sous_champ, annee, niveau, code, valeur, nb_valeurs, unite, numerateur, "
    "denominateur, replis, repli_annees, repli_carres"
)

INSERT_DELTAS = db.logged(
    f"""
INSERT INTO aggregates AS a ({AGGREGATE_COLUMNS}, revision, change_seq)
SELECT {AGGREGATE_COLUMNS}, 1, {db.NEXT_CHANGE} FROM incoming_deltas WHERE fresh""",
    select=PUBLISHED,
)

# A delta added to the aggregate row it is for (``a``), new or not.
ADD_DELTA = """
ON CONFLICT (indicateur, sous_champ, annee, niveau, code) DO UPDATE SET
    valeur = a.valeur + EXCLUDED.valeur,
    nb_valeurs = a.nb_valeurs + EXCLUDED.nb_valeurs,
    numerateur = a.numerateur + EXCLUDED.numerateur,
    denominateur = a.denominateur + EXCLUDED.denominateur,
    replis = a.replis + EXCLUDED.replis,
    repli_annees = a.repli_annees + EXCLUDED.repli_annees,
    repli_carres = a.repli_carres + EXCLUDED.repli_carres,
    unite = COALESCE(EXCLUDED.unite, a.unite),
    revision = a.revision + 1,
    change_seq = EXCLUDED.change_seq,
    previous_seq = a.change_seq,
    updated_at = now()"""

# Rows are merged sorted by key, so concurrent aggregators lock them in one order.
MERGE_DELTAS = db.logged(
    f"""
INSERT INTO aggregates AS a ({AGGREGATE_COLUMNS}, revision, change_seq)
SELECT {AGGREGATE_COLUMNS}, 1, {db.NEXT_CHANGE}
FROM incoming_deltas WHERE NOT fresh ORDER BY ord
{ADD_DELTA}""",
    select=PUBLISHED,
)


# A min or max before the batch (read under the numbering lock, so no other
# writer moves it meanwhile), to settle it from what the batch did to its
# members (transform.ExtremeChange.settle).
SELECT_EXTREMES = """
SELECT a.indicateur, a.sous_champ, a.annee, a.niveau, a.code, a.valeur, a.nb_valeurs
FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::text[]) AS k(i, s, y, n, c)
CROSS JOIN LATERAL (
    SELECT * FROM aggregates a
    WHERE (a.indicateur, a.sous_champ, a.annee, a.niveau, a.code) = (k.i, k.s, k.y, k.n, k.c)
    LIMIT 1
) a
"""

SET_EXTREMES = db.logged(
    f"""
UPDATE aggregates a SET valeur = k.v, revision = a.revision + 1,
    {db.RENUMBER}, updated_at = now()
FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::text[], %s::numeric[])
    AS k(i, s, y, n, c, v)
WHERE (a.indicateur, a.sous_champ, a.annee, a.niveau, a.code) = (k.i, k.s, k.y, k.n, k.c)
  AND a.valeur IS DISTINCT FROM k.v""",
    select=PUBLISHED,
)

# A min or max whose batch took away a value as good as it cannot be moved
# by a delta: recompute it from the member communes' rows. Members are
# found level by level through the communes' indexes, and x is computed
# once (MATERIALIZED): one join with an OR of the levels, and x estimated at
# one row then sorted again for each key, took 87 s for the 1,391
# territories of a max indicator; this takes well under a second
# (docs/measurements.md).
RECOMPUTE_EXTREMES = db.logged(
    f"""
WITH k AS (
    SELECT * FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::text[], %s::text[])
        AS k(i, s, y, n, c, f)
), members AS (
    SELECT k.*, m.code AS member FROM k JOIN communes m ON k.n = 'epci' AND m.epci = k.c
    UNION ALL
    SELECT k.*, m.code FROM k JOIN communes m ON k.n = 'departement' AND m.departement = k.c
    UNION ALL
    SELECT k.*, m.code FROM k JOIN communes m ON k.n = 'region' AND m.region = k.c
    UNION ALL
    SELECT k.*, m.code FROM k CROSS JOIN communes m WHERE k.n = 'france'
), x AS MATERIALIZED (
    SELECT k.i, k.s, k.y, k.n, k.c,
           CASE WHEN k.f = 'min' THEN min(cv.valeur) ELSE max(cv.valeur) END AS v
    FROM members k
    JOIN aggregates cv ON (cv.indicateur, cv.sous_champ, cv.annee, cv.niveau, cv.code)
        = (k.i, k.s, k.y, 'commune', k.member) AND cv.nb_valeurs > 0
    GROUP BY k.i, k.s, k.y, k.n, k.c, k.f
)
UPDATE aggregates a SET valeur = coalesce(x.v, 0), revision = a.revision + 1,
    {db.RENUMBER}, updated_at = now()
FROM k LEFT JOIN x ON (x.i, x.s, x.y, x.n, x.c) = (k.i, k.s, k.y, k.n, k.c)
WHERE (a.indicateur, a.sous_champ, a.annee, a.niveau, a.code) = (k.i, k.s, k.y, k.n, k.c)
  AND a.valeur IS DISTINCT FROM coalesce(x.v, 0)""",
    select=PUBLISHED,
)


# Aggregators serialize on the places they touch: (sous_champ, annee, commune)
# covers a commune's indicators and their pair partners. Places are hashed
# into a bounded number of buckets so a transaction never holds more than
# LOCK_BUCKETS advisory locks (Postgres' lock table is small). The cleaner
# routes places by the same hash, so aggregators on different partitions take
# different buckets (schemas/clean.py place_hash), but for a ratio's
# denominator standing in for later years: it locks those years' places too.
LOCK_NAMESPACE = 7_277_411
LOCK_BUCKETS = 1024


def lock_bucket(key: CommuneKey) -> int:
    return _bucket(key[1:])


def lock_buckets(keys: Iterable[CommuneKey]) -> set[int]:
    """The buckets of ``keys``' places, each place hashed once (a commune's
    indicators share it)."""
    return {_bucket(place) for place in {key[1:] for key in keys}}


def _bucket(place: tuple[str, int, str]) -> int:
    sous_champ, annee, commune = place
    return place_hash(sous_champ, annee, commune) % LOCK_BUCKETS


def _columns(keys: Iterable[tuple[Any, ...]], width: int) -> list[str]:
    """The keys' columns, each as one array literal (``%s::text[]``…)."""
    columns = list(zip(*keys, strict=True)) or [()] * width  # transposed in C
    if len(columns) != width:
        raise ValueError(f"keys of {len(columns)} parts, expected {width}")
    return [db.array_literal(column) for column in columns]


# Shared: `itte referentiel charger` takes the row for update before it
# switches the edition, so it waits for the batches in flight, and the
# batches after it read the new edition.
EDITION = "SELECT version, millesime FROM referential_meta FOR SHARE"
LOADED = "SELECT name, content FROM referential_files WHERE millesime = %s"


def same_edition(cur: psycopg.Cursor[Any], ref: referential.Referential) -> None:
    """Inside a writing transaction: the stored values are on ``ref``'s
    edition. Else nothing is written: :class:`EditionMoved` with the
    edition `itte referentiel charger` loaded since, or, when `itte migrate`
    of another release loaded its own, Fatal: the service stops, to be
    restarted on that release (services/aggregator/placement.py)."""
    cur.execute(EDITION)
    found = cur.fetchone()
    if found is not None and found[0] == ref.version:
        return
    if found is not None and found[1] is not None:
        files = {name: bytes(content) for name, content in cur.execute(LOADED, (found[1],))}
        if files and (loaded := referential.from_files(files, found[1])).version == found[0]:
            raise EditionMoved(loaded)
    raise Fatal(
        f"the database moved to the edition {found and found[1]} of the map "
        f"({found and found[0]}); this aggregator places on {ref.millesime} "
        f"({ref.version}): stopping, to be restarted on the database's edition"
    )


class AggregateStore:
    def __init__(
        self, database_url: str, ref: referential.Referential, rules: AggregationRules
    ) -> None:
        self._rules = rules
        self.use(ref)
        self._db = db.KeptConnection(database_url)

    def use(self, ref: referential.Referential) -> None:
        """Place the next batches on the edition ``ref``."""
        self._ref = ref
        self._ancestors = referential.ancestors(ref)
        self._sums = EpciSums.of(self._rules, ref)

    def _connection(self) -> psycopg.Connection[Any]:
        return self._db.get()

    def close(self) -> None:
        self._db.close()

    def _on_this_map(self, record: CleanObservation) -> CleanObservation:
        """The record on the commune this aggregator's edition places its
        code on: a cleaner of another release may have placed it on its own
        (a rolling upgrade). The same rule as the cleaner's, so mostly the same."""
        if record.commune == record.commune_source and record.commune in self._ancestors:
            return record  # a commune of the edition is itself
        try:
            commune = referential.locate(record.commune_source, self._ref)[1]
        except referential.Unplaced:
            return record  # a dead letter, below
        return (
            record if commune == record.commune else record.model_copy(update={"commune": commune})
        )

    def apply(self, records: list[CleanObservation]) -> ApplyResult:
        published = [r for r in records if r.published]  # a territory's own value
        records = [self._on_this_map(r) for r in records if not r.published]
        unplaced = [r for r in records if r.commune not in self._ancestors]
        if unplaced:
            records = [r for r in records if r.commune in self._ancestors]
        if not records and not published:
            if unplaced:  # unknown here, perhaps not on the database's edition
                conn = self._connection()
                with conn.transaction(), conn.cursor() as cur:
                    same_edition(cur, self._ref)
            return ApplyResult(0, 0, 0, unplaced, [], [])
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cur:
            same_edition(cur, self._ref)
            commune_keys = commune_keys_needed(records, self._rules)
            places = lock_buckets(commune_keys)
            places |= lock_buckets(
                (r.indicateur, r.sous_champ, r.annee, r.commune) for r in published
            )
            # The départements whose EPCIs' sum may move: under their places' locks too.
            summed = self._sums.moved(published_values.key_of(r) for r in published)
            places |= lock_buckets(summed)
            # Locks taken in sorted order cannot deadlock.
            cur.execute(
                "SELECT pg_advisory_xact_lock(%s, b) FROM unnest(%s::int[]) AS b",
                (LOCK_NAMESPACE, db.array_literal(sorted(places))),
            )
            stored: dict[ObsKey, Stored] = {}
            communes: dict[CommuneKey, CommuneState] = {}
            if records:
                cur.execute(SELECT_STORED, _columns({r.key for r in records}, 4))
                stored = {(i, s, a, c): Stored(*rest) for i, s, a, c, *rest in cur.fetchall()}
                cur.execute(SELECT_COMMUNES, _columns(commune_keys, 4))
                communes = {(i, s, a, c): CommuneState(v, n) for i, s, a, c, v, n in cur.fetchall()}
            result = plan(records, stored, communes, self._ancestors.__getitem__, self._rules)
            chosen = published_values.decide(cur, published)
            absent = Absent(stored, commune_keys - communes.keys())
            changes = self._write(cur, result, absent, chosen.winners)
        return ApplyResult(
            len(result.writes) + len(chosen.winners),
            result.stale + chosen.stale,
            len(result.deltas),
            unplaced,
            result.foreign + chosen.foreign,
            changes,
        )

    def _write(
        self,
        cur: psycopg.Cursor[Any],
        result: Plan,
        absent: Absent,
        published: dict[published_values.Key, CleanObservation],
    ) -> list[Change]:
        """The plan and the published values written (with the départements'
        sums and the ratios they move); returns the changes of the aggregates
        it numbered."""
        cur.execute(TEMP_TABLES)
        if result.writes:
            fresh = [absent.observation(r.key) for r in result.writes]
            with cur.copy(
                f"COPY incoming_observations ({OBSERVATION_COLUMNS}, fresh) FROM STDIN"
            ) as copy:
                for r, is_fresh in zip(result.writes, fresh, strict=True):
                    copy.write_row((*observation_row(r), is_fresh))
            _run_parts(cur, INSERT_OBSERVATIONS, MERGE_OBSERVATIONS, fresh)
        changes: list[Change] = []
        # The (indicateur, annee) whose aggregates this writes: caches are told.
        ratios = published_values.ratios_moved(published, self._rules.ratios_of)
        touched = {(k[0], k[2]) for k in (*result.deltas, *result.extremes, *published, *ratios)}
        if touched:  # one round trip: the lock, and the trigger silenced
            cur.execute(f"{db.NUMBERING_LOCK}; {db.ANNOUNCING}")
        settled, recompute = _settle(cur, result) if result.extremes else ({}, [])
        if result.deltas:
            fresh = [absent.commune_row(key) for key in result.deltas]
            with cur.copy("COPY incoming_deltas FROM STDIN") as copy:
                for ord_, ((key, d), is_fresh) in enumerate(
                    zip(result.deltas.items(), fresh, strict=True)
                ):
                    values = (
                        *(d.valeur, d.nb_valeurs, d.unite, d.numerateur, d.denominateur),
                        *(d.replis, d.repli_annees, d.repli_carres),
                    )
                    copy.write_row((*key, *values, ord_, is_fresh))
            changes += _run_parts(cur, INSERT_DELTAS, MERGE_DELTAS, fresh, returning=True)
        if settled:
            rows = [(*key, str(valeur)) for key, valeur in settled.items()]
            changes += changes_of(cur.execute(SET_EXTREMES, _columns(rows, 6)).fetchall())
        if recompute:
            rows = [(*key, result.extremes[key].kind) for key in recompute]
            changes += changes_of(cur.execute(RECOMPUTE_EXTREMES, _columns(rows, 6)).fetchall())
        changes += published_values.write(cur, published)
        changes += self._sums.write(cur, self._sums.moved(published))
        changes += published_values.write_ratios(cur, ratios)
        if touched:
            cur.execute(db.ANNOUNCE, (db.CHANGES_CHANNEL, db.announcements(touched)))
        return changes


def observation_row(r: CleanObservation) -> tuple[Any, ...]:
    """``r`` as a row of ``OBSERVATION_COLUMNS``, for COPY."""
    return (
        r.indicateur,
        r.sous_champ,
        r.annee,
        r.commune_source,
        r.commune,
        *published_values.held(r),
    )


@dataclass(frozen=True)
class Absent:
    """What the batch's lookups found missing, under the locks of its places."""

    found: Mapping[ObsKey, Stored]  # the observations that exist
    missing_communes: set[CommuneKey]  # commune rows looked up and not found

    def observation(self, key: ObsKey) -> bool:
        return key not in self.found

    def commune_row(self, key: AggKey) -> bool:
        indicateur, sous_champ, annee, niveau, code = key
        return (
            niveau == "commune" and (indicateur, sous_champ, annee, code) in self.missing_communes
        )


def _run_parts(
    cur: psycopg.Cursor[Any], insert: str, merge: str, fresh: list[bool], *, returning: bool = False
) -> list[Change]:
    """The plain insert of the fresh rows and the merge of the others, each
    only when it has rows; ``returning``: the changes they return."""
    changes: list[Change] = []
    for statement, needed in ((insert, any(fresh)), (merge, not all(fresh))):
        if needed:
            cur.execute(statement)
            if returning:
                changes += changes_of(cur.fetchall())
    return changes


def _settle(cur: psycopg.Cursor[Any], result: Plan) -> tuple[dict[AggKey, Decimal], list[AggKey]]:
    """The extremes the batch settles (new value by key) and the ones only a
    recomputation can tell, from their values before the batch."""
    cur.execute(SELECT_EXTREMES, _columns(result.extremes, 5))
    current = {tuple(row[:5]): (row[5], row[6]) for row in cur.fetchall()}
    settled: dict[AggKey, Decimal] = {}
    recompute: list[AggKey] = []
    for key, change in result.extremes.items():
        valeur, nb_valeurs = current.get(key, (ZERO, 0))
        new = change.settle(valeur, nb_valeurs > 0)
        if new is None:
            recompute.append(key)
        elif new != valeur:
            settled[key] = new
    return settled, recompute
