"""Kafka adapters of the aggregator: the outbox relay (committed aggregate
changes → ``indicators.aggregates``) and the dead letters.

Every change of an aggregate is published, at every level (commune rows
too, unless ``ITTE_PUBLISH_COMMUNES`` is off), with what an API row carries.

The relay runs after every batch and on a timer, so changes committed just before a
crash are published after the restart. At least once, on a compacted topic
keyed by aggregate: a repeated message only restates the latest value.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from psycopg.rows import dict_row

from common import db
from common.kafka import BlockingProducer
from schemas import aggregates as topic
from schemas import deadletter
from schemas.aggregates import AggregateChange
from schemas.deadletter import DeadLetter

SELECT_PENDING = """
SELECT indicateur, sous_champ, annee, niveau, code, nom, agregation, valeur, unite,
       communes_renseignees, communes_total, revision, updated_at
FROM aggregate_values
WHERE revision > published_revision AND (%(communes)s OR niveau <> 'commune')
LIMIT %(page)s
"""

# The partial index aggregates_unpublished holds exactly these rows.
BACKLOG = """
SELECT count(*) AS pending,
       coalesce(extract(epoch FROM now() - min(updated_at)), 0) AS oldest
FROM aggregates
WHERE revision > published_revision AND (%(communes)s OR niveau <> 'commune')
"""

# A row published at its current revision takes the next number of the change
# feed (migration 0006); one changed again meanwhile waits for its next turn.
MARK_PUBLISHED = """
UPDATE aggregates a SET published_revision = GREATEST(a.published_revision, k.r),
    change_seq = CASE WHEN k.r >= a.revision THEN nextval('aggregate_changes')
                      ELSE a.change_seq END
FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::text[], %s::bigint[])
     AS k(i, s, y, n, c, r)
WHERE (a.indicateur, a.sous_champ, a.annee, a.niveau, a.code) = (k.i, k.s, k.y, k.n, k.c)
"""
# Held to commit: feed numbers become visible in the order they are taken,
# whatever the number of relays (aggregator replicas).
FEED_LOCK = "SELECT pg_advisory_xact_lock(7277412)"


class OutboxRelay:
    def __init__(
        self,
        database_url: str,
        producer: BlockingProducer,
        page: int = 20_000,
        *,
        communes: bool = True,
    ) -> None:
        """``communes``: publish commune-level changes too."""
        self._database_url = database_url
        self._producer = producer
        self._page = page
        self._communes = communes
        self._lock = threading.Lock()  # the batch path and the timer may overlap
        # Kept open: it runs after every batch, and a new connection would add
        # its set-up to the latency of every change on the topic.
        self._conn: psycopg.Connection[dict[str, Any]] | None = None

    def _connection(self) -> psycopg.Connection[dict[str, Any]]:
        self._conn = db.usable(
            self._conn,
            lambda: psycopg.connect(self._database_url, autocommit=True, row_factory=dict_row),
        )
        return self._conn

    def publish_pending(self) -> int:
        """Publish every pending change; return how many were published."""
        with self._lock:
            try:
                return self._publish(self._connection())
            except psycopg.OperationalError:
                if self._conn is not None:
                    self._conn.close()  # the next call reconnects
                raise

    def backlog(self) -> tuple[int, float]:
        with self._lock:
            row = self._connection().execute(BACKLOG, {"communes": self._communes}).fetchone()
        assert row is not None
        return row["pending"], float(row["oldest"])

    def _publish(self, conn: psycopg.Connection[dict[str, Any]]) -> int:
        published = 0
        while True:
            wanted = {"communes": self._communes, "page": self._page}
            rows = conn.execute(SELECT_PENDING, wanted).fetchall()
            if not rows:
                return published
            changes = [AggregateChange.model_validate(row) for row in rows]
            self._producer.send_all(
                topic.TOPIC, ((c.kafka_key(), c.model_dump_json().encode()) for c in changes)
            )
            keys = [
                (c.indicateur, c.sous_champ, c.annee, c.niveau, c.code, c.revision) for c in changes
            ]
            with conn.transaction():
                conn.execute(FEED_LOCK)
                conn.execute(MARK_PUBLISHED, [list(col) for col in zip(*keys, strict=True)])
            published += len(changes)


class KafkaDeadLetters:
    def __init__(self, producer: BlockingProducer) -> None:
        self._producer = producer

    def send(self, letters: list[DeadLetter]) -> None:
        if letters:
            self._producer.send_all(
                deadletter.TOPIC, ((d.record_id, deadletter.encode(d)) for d in letters)
            )
