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

from common import db
from common.kafka import BlockingProducer
from schemas import aggregates as topic
from schemas import deadletter
from schemas.deadletter import DeadLetter

# Postgres writes each message (json_build_object, in C): validating and
# encoding a pydantic model per row cost more than the rest of the relay
# (docs/measurements.md). tests/integration/test_kafka.py checks the messages
# against AggregateChange, field by field. The rows are read in the order of
# their numbers, through the change log (migration 0010), one primary-key
# probe each (as a join, Postgres chose to scan both tables whole). Commune
# rows are read even when not published, and an entry whose row is gone
# (deleted by hand) too, so that the cursor moves past them.
SELECT_PENDING = f"""
SELECT l.change_seq, concat_ws('|', {db.key_of("l")}) AS kafka_key,
       CASE WHEN v.code IS NOT NULL AND (%(communes)s OR v.niveau <> 'commune')
       THEN json_build_object(
           'indicateur', v.indicateur, 'sous_champ', v.sous_champ, 'annee', v.annee,
           'niveau', v.niveau, 'code', v.code, 'nom', v.nom, 'agregation', v.agregation,
           'valeur', v.valeur::text, 'unite', v.unite,
           'communes_renseignees', v.communes_renseignees,
           'communes_total', v.communes_total,
           'revision', v.revision, 'updated_at', v.updated_at,
           'couverture', CASE WHEN v.communes_total > 0
                              THEN v.communes_renseignees::float8 / v.communes_total
                              ELSE 0::float8 END,
           'complet', v.communes_renseignees = v.communes_total
       )::text END AS message
FROM aggregate_change_log l
LEFT JOIN LATERAL (
    SELECT * FROM aggregate_values v
    WHERE {db.same_change("v", "l")}
    LIMIT 1
) v ON true
WHERE l.change_seq > %(after)s
ORDER BY l.change_seq
LIMIT %(page)s
"""

CURSOR = "SELECT published_seq FROM outbox_cursor WHERE relay = 'aggregates'"
# A page is on the broker: the cursor moves past it (one row written a page,
# where marking each published row cost a second write of it).
ADVANCE = """
INSERT INTO outbox_cursor (relay, published_seq) VALUES ('aggregates', %s)
ON CONFLICT (relay) DO UPDATE
SET published_seq = GREATEST(outbox_cursor.published_seq, EXCLUDED.published_seq)
"""

BACKLOG = f"""
SELECT count(*) AS pending,
       coalesce(extract(epoch FROM now() - min(a.updated_at)), 0) AS oldest
FROM aggregate_change_log l
CROSS JOIN LATERAL (
    SELECT a.updated_at FROM aggregates a
    WHERE {db.same_change("a", "l")}
    LIMIT 1
) a
WHERE l.change_seq > coalesce(({CURSOR}), 0) AND (%(communes)s OR l.niveau <> 'commune')
"""

# One relay at a time reads, publishes and moves the cursor, whatever the
# number of aggregators: two relays would publish the same rows twice
# (docs/measurements.md). The next one waits, then finds what is still
# pending. A session lock (Postgres drops it with a broken connection), on
# the key relays before 2026-11-29 took per transaction, so that old and new
# exclude each other during an upgrade.
RELAY_LOCK = "SELECT pg_advisory_lock(7277412)"
RELAY_UNLOCK = "SELECT pg_advisory_unlock(7277412)"


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
        self._lock = threading.Lock()  # callers in several threads share one connection
        # Kept open: it runs after every batch, and a new connection would add
        # its set-up to the latency of every change on the topic.
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        self._conn = db.usable(
            self._conn, lambda: psycopg.connect(self._database_url, autocommit=True)
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
        pending, oldest = row
        return pending, float(oldest)

    def _publish(self, conn: psycopg.Connection[tuple[Any, ...]]) -> int:
        conn.execute(RELAY_LOCK)
        try:
            return self._publish_locked(conn)
        finally:
            if not conn.closed and not conn.broken:
                conn.execute(RELAY_UNLOCK)

    def _publish_locked(self, conn: psycopg.Connection[tuple[Any, ...]]) -> int:
        found = conn.execute(CURSOR).fetchone()
        after, published = (found[0] if found else 0), 0
        while True:
            wanted = {"communes": self._communes, "after": after, "page": self._page}
            rows = conn.execute(SELECT_PENDING, wanted).fetchall()
            if not rows:
                return published
            messages = [(key, value.encode()) for _, key, value in rows if value is not None]
            self._producer.send_all(topic.TOPIC, messages)
            after = rows[-1][0]
            conn.execute(ADVANCE, (after,))
            published += len(messages)


class KafkaDeadLetters:
    def __init__(self, producer: BlockingProducer) -> None:
        self._producer = producer

    def send(self, letters: list[DeadLetter]) -> None:
        if letters:
            self._producer.send_all(
                deadletter.TOPIC, ((d.record_id, deadletter.encode(d)) for d in letters)
            )
