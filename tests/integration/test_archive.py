"""The dead-letter archive in Postgres, under the aggregator's own role."""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime

import psycopg

from schemas.deadletter import DeadLetter
from services.aggregator.archive import PostgresLetterArchive
from tests.integration.test_roles import as_role


def letter(record_id: str, reason: str = "unknown_code") -> DeadLetter:
    return DeadLetter(
        record_id=record_id,
        stage="cleaner",
        reason=reason,
        detail="99999 is neither a commune nor a former code",
        payload={"commune": "99999", "email": "hmac-sha256:" + "0" * 64},
        at=datetime(2026, 11, 29, tzinfo=UTC),
    )


def test_letters_are_kept_once_with_their_batch_and_position(database_url: str) -> None:
    with closing(PostgresLetterArchive(as_role(database_url, "itte_writer"))) as archive:
        archive.keep([letter("b1:000004"), letter("kafka:sha256:ab")])
        archive.keep([letter("b1:000004", reason="replayed")])  # a replay changes nothing
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT record_id, batch_id, position, reason, payload->>'commune' "
            "FROM dead_letters ORDER BY record_id"
        ).fetchall()
    assert rows == [
        ("b1:000004", "b1", 5, "unknown_code", "99999"),
        ("kafka:sha256:ab", None, None, "unknown_code", "99999"),
    ]
