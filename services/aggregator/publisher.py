"""Kafka adapters of the aggregator: the outbox relay (committed aggregate
changes → ``indicators.aggregates``) and the dead letters.

Every change of an aggregate is published, at every level (commune rows
too, unless ``ITTE_PUBLISH_COMMUNES`` is off), with what an API row carries
(services/aggregator/changes.py).

A batch's changes are published as its transaction wrote them, once it has
committed, when nothing numbered before them is pending
(:meth:`OutboxRelay.publish_changes`). The change log is read instead
(:meth:`OutboxRelay.publish_pending`) when something older is pending, and
on a timer, so that changes committed just before a crash are published
after the restart. At least once, on a compacted topic keyed by aggregate:
a repeated message only restates the latest value.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg

from common import db
from common.kafka import BlockingProducer
from schemas import aggregates as topic
from schemas import deadletter
from schemas.deadletter import DeadLetter
from services.aggregator.changes import Change, changes_of, joined, latest_per_key, message

T = TypeVar("T")

# The rows numbered after a cursor, in the order of their numbers, through
# the change log (migration 0010), one primary-key probe each (as a join,
# Postgres chose to scan both tables whole). An entry whose row is gone
# (deleted by hand) is read too, so that the cursor moves past it.
SELECT_PENDING = f"""
SELECT l.change_seq, l.niveau, concat_ws('|', {db.key_of("l")}) AS kafka_key,
       {message("a", "t", "i")} AS message
FROM aggregate_change_log l
LEFT JOIN LATERAL (
    SELECT * FROM aggregates a
    WHERE {db.same_change("a", "l")}
    LIMIT 1
) a ON true
{joined("a", "t", "i")}
WHERE l.change_seq > %(after)s
ORDER BY l.change_seq
LIMIT %(page)s
"""

# Whether a change numbered between the cursor and a transaction's first
# number is still in the log: it was committed before that transaction (the
# numbering lock, common/db/changes.py) and is not published yet.
OLDER_PENDING = """
SELECT EXISTS (
    SELECT 1 FROM aggregate_change_log WHERE change_seq > %s AND change_seq < %s
)
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
        self._producer = producer
        self._page = page
        self._communes = communes
        self._lock = threading.Lock()  # callers in several threads share one connection
        # Kept open: it runs after every batch, and a new connection would add
        # its set-up to the latency of every change on the topic.
        self._db = db.KeptConnection(database_url, autocommit=True)

    def publish_pending(self) -> int:
        """Publish every pending change, read from the log; return how many."""
        return self._under_relay_lock(self._publish_log)

    def publish_changes(self, changes: Sequence[Change]) -> int | None:
        """Publish one committed transaction's changes as it wrote them, when
        the cursor is just before them: how many; 0 when a read of the log
        published them already; None when something older is pending (the
        caller reads the log instead)."""
        if not changes:
            return 0
        return self._under_relay_lock(lambda conn: self._publish_written(conn, changes))

    def backlog(self) -> tuple[int, float]:
        with self._lock:
            row = self._db.get().execute(BACKLOG, {"communes": self._communes}).fetchone()
        assert row is not None
        pending, oldest = row
        return pending, float(oldest)

    def _under_relay_lock(self, publish: Callable[[psycopg.Connection[Any]], T]) -> T:
        with self._lock:
            try:
                conn = self._db.get()
                conn.execute(RELAY_LOCK)
                try:
                    return publish(conn)
                finally:
                    if not conn.closed and not conn.broken:
                        conn.execute(RELAY_UNLOCK)
            except psycopg.OperationalError:
                self._db.close()  # the next call reconnects
                raise

    def _cursor(self, conn: psycopg.Connection[Any]) -> int:
        found = conn.execute(CURSOR).fetchone()
        return int(found[0]) if found else 0

    def _publish_written(
        self, conn: psycopg.Connection[Any], changes: Sequence[Change]
    ) -> int | None:
        first, last = min(c.seq for c in changes), max(c.seq for c in changes)
        after = self._cursor(conn)
        if after >= last:
            return 0  # a read of the log was here first
        if after >= first:
            return None  # partly published by a read: it publishes the rest
        older = conn.execute(OLDER_PENDING, (after, first)).fetchone()
        if older is None or older[0]:
            return None
        published = self._send(latest_per_key(list(changes)))
        conn.execute(ADVANCE, (last,))
        return published

    def _publish_log(self, conn: psycopg.Connection[Any]) -> int:
        after, published = self._cursor(conn), 0
        while True:
            wanted = {"after": after, "page": self._page}
            rows = conn.execute(SELECT_PENDING, wanted).fetchall()
            if not rows:
                return published
            published += self._send(changes_of(rows))
            after = rows[-1][0]
            conn.execute(ADVANCE, (after,))

    def _send(self, changes: list[Change]) -> int:
        """The changes' messages on the topic, in order; how many. A row
        whose territory the map no longer has (a commune merged, an EPCI
        gone, by a new edition) is a tombstone: its key, no value, which a
        compacted topic reads as deleted."""
        messages = [(c.key, c.message) for c in changes if self._communes or c.niveau != "commune"]
        self._producer.send_all(topic.TOPIC, messages)
        return len(messages)


class KafkaDeadLetters:
    def __init__(self, producer: BlockingProducer) -> None:
        self._producer = producer

    def send(self, letters: list[DeadLetter]) -> None:
        if letters:
            self._producer.send_all(
                deadletter.TOPIC, ((d.record_id, deadletter.encode(d)) for d in letters)
            )
