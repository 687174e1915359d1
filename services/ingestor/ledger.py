"""Postgres adapter: what became of each pushed batch (migration 0005).

The ingestor writes ``ingest_batches`` before publishing; the aggregator marks
``batch_progress`` as records reach the results; the aggregator also archives
the dead letters in ``dead_letters``. A batch is kept ``ttl`` after it was
received, then deleted a few at a time by the batches that follow. Each call
opens its own connection, as for the idempotency keys.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg.types.json import Jsonb

from services.ingestor.ports import BatchProgress, Letter, OpenedBatch

log = logging.getLogger(__name__)

OPEN = """
INSERT INTO ingest_batches (batch_id, producer, accepted, lines, refused)
VALUES (%s, %s, %s, %s, %s)
"""

FORGET_EXPIRED = """
WITH gone AS (
    DELETE FROM ingest_batches WHERE batch_id = ANY(ARRAY(
        SELECT batch_id FROM ingest_batches
        WHERE received_at < now() - make_interval(secs => %(ttl)s) LIMIT 100))
    RETURNING batch_id
)
DELETE FROM batch_progress WHERE batch_id IN (SELECT batch_id FROM gone)
"""

PROGRESS = """
SELECT b.accepted, b.lines, b.refused, b.received_at, coalesce(bit_count(p.clean), 0)
FROM ingest_batches b LEFT JOIN batch_progress p USING (batch_id)
WHERE b.batch_id = %s AND b.producer = %s
"""

LETTERS = """
SELECT position, stage, reason, detail FROM dead_letters
WHERE batch_id = %s ORDER BY position NULLS FIRST, record_id
"""


class PostgresBatchLedger:
    def __init__(self, database_url: str, ttl_seconds: float = 30 * 24 * 3600.0) -> None:
        self._database_url = database_url
        self._ttl = ttl_seconds

    def open(self, batch: OpenedBatch) -> None:
        with psycopg.connect(self._database_url, autocommit=True) as conn:
            conn.execute(FORGET_EXPIRED, {"ttl": self._ttl})
            refused = [{"line": line, "error": error} for line, error in batch.refused]
            conn.execute(
                OPEN, (batch.batch_id, batch.producer, batch.accepted, batch.lines, Jsonb(refused))
            )

    def drop(self, batch_id: str) -> None:
        with psycopg.connect(self._database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM ingest_batches WHERE batch_id = %s", (batch_id,))

    def progress(self, producer: str, batch_id: str) -> BatchProgress | None:
        with psycopg.connect(self._database_url, autocommit=True) as conn:
            row = conn.execute(PROGRESS, (batch_id, producer)).fetchone()
            if row is None:
                return None
            accepted, lines, refused, received_at, clean = row
            letters = [Letter(*letter) for letter in conn.execute(LETTERS, (batch_id,))]
        batch = OpenedBatch(
            batch_id,
            producer,
            accepted,
            lines,
            [(item["line"], item["error"]) for item in refused],
        )
        return BatchProgress(batch, received_at, clean, letters)

    def reachable(self) -> str | None:
        try:
            with psycopg.connect(self._database_url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            # The message names the server's host, port and user: the log
            # keeps it for operators; /readyz, which anyone may read, does not.
            log.warning("database unreachable: %s", str(exc).splitlines()[0][:300])
            return f"database unavailable: {type(exc).__name__}"
        return None
