"""Idempotency keys: a retried request is acknowledged again, published once.

Kept in Postgres so that a restarted ingestor (or another replica) knows them.
A key is claimed before publishing and completed with the answer after; a
claim left by a crashed ingestor can be taken over once it is stale (the
records may then be published twice, which the aggregator absorbs). A key
expires ``ttl`` after its claim: it may then be used again, for any body, and
expired keys are deleted a few at a time by the claims that follow.

The table, ``ingest_requests``, comes with the migrations; each call opens
its own connection (requests are few and far between, compared with records).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from services.ingestor.ports import Previous, body_digest

CLAIM = """
INSERT INTO ingest_requests AS r (producer, key, body_sha256)
VALUES (%(producer)s, %(key)s, %(digest)s)
ON CONFLICT (producer, key) DO UPDATE SET
    claimed_at = now(), body_sha256 = EXCLUDED.body_sha256, status = NULL, response = NULL
WHERE r.claimed_at < now() - make_interval(secs => %(ttl)s)
   OR (r.status IS NULL AND r.claimed_at < now() - make_interval(secs => %(stale)s)
       AND r.body_sha256 = EXCLUDED.body_sha256)
RETURNING true
"""

FORGET_EXPIRED = """
DELETE FROM ingest_requests WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM ingest_requests
    WHERE claimed_at < now() - make_interval(secs => %(ttl)s) LIMIT 100))
"""


class IdempotencyStore:
    def __init__(
        self,
        database_url: str,
        stale_after_seconds: float = 60.0,
        ttl_seconds: float = 24 * 3600.0,
    ) -> None:
        self._database_url = database_url
        self._stale = stale_after_seconds
        self._ttl = ttl_seconds

    def claim(self, producer: str, key: str, body: bytes) -> Previous | None:
        """None: the key is ours to process. Otherwise what happened before."""
        digest = body_digest(body)
        with psycopg.connect(self._database_url, autocommit=True) as conn:
            times = {"ttl": self._ttl, "stale": self._stale}
            conn.execute(FORGET_EXPIRED, times)
            if conn.execute(
                CLAIM, {"producer": producer, "key": key, "digest": digest, **times}
            ).fetchone():
                return None
            row = conn.execute(
                "SELECT body_sha256, status, response FROM ingest_requests "
                "WHERE producer = %s AND key = %s",
                (producer, key),
            ).fetchone()
        assert row is not None
        return Previous(same_body=row[0] == digest, status=row[1], response=row[2])

    def complete(self, producer: str, key: str, status: int, response: Any) -> None:
        with psycopg.connect(self._database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE ingest_requests SET status = %s, response = %s "
                "WHERE producer = %s AND key = %s",
                (status, Jsonb(response), producer, key),
            )

    def release(self, producer: str, key: str) -> None:
        with psycopg.connect(self._database_url, autocommit=True) as conn:
            conn.execute(
                "DELETE FROM ingest_requests WHERE producer = %s AND key = %s AND status IS NULL",
                (producer, key),
            )
