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
# their numbers (index aggregates_by_change); commune rows are read even when
# not published, so that the cursor moves past them.
SELECT_PENDING = """
SELECT change_seq,
       concat_ws('|', indicateur, sous_champ, annee, niveau, code) AS kafka_key,
       CASE WHEN %(communes)s OR niveau <> 'commune' THEN json_build_object(
           'indicateur', indicateur, 'sous_champ', sous_champ, 'annee', annee,
           'niveau', niveau, 'code', code, 'nom', nom, 'agregation', agregation,
           'valeur', valeur::text, 'unite', unite,
           'communes_renseignees', communes_renseignees, 'communes_total', communes_total,
           'revision', revision, 'updated_at', updated_at,
           'couverture', CASE WHEN communes_total > 0
                              THEN communes_renseignees::float8 / communes_total
                              ELSE 0::float8 END,
           'complet', communes_renseignees = communes_total
       )::text END AS message
FROM aggregate_values
WHERE change_seq > %(after)s
ORDER BY change_seq
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
       coalesce(extract(epoch FROM now() - min(updated_at)), 0) AS oldest
FROM aggregates
WHERE change_seq > coalesce(({CURSOR}), 0) AND (%(communes)s OR niveau <> 'commune')
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
