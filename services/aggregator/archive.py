"""Postgres adapter: the dead-letter topic archived in ``dead_letters``, so
that what became of a batch can be read back (by producer, by batch)."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from common import db
from schemas.clean import batch_position
from schemas.deadletter import DeadLetter

INSERT = """
INSERT INTO dead_letters (record_id, batch_id, position, stage, reason, detail, payload, at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (record_id) DO NOTHING
"""


class PostgresLetterArchive:
    def __init__(self, database_url: str) -> None:
        self._db = db.KeptConnection(database_url)

    def keep(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        conn = self._db.get()
        with conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(INSERT, [row(letter) for letter in letters])

    def close(self) -> None:
        self._db.close()


def row(letter: DeadLetter) -> tuple[Any, ...]:
    batch_id, position = batch_position(letter.record_id) or (None, None)
    payload = Jsonb(letter.payload) if letter.payload is not None else None
    return (
        letter.record_id,
        batch_id,
        position,
        letter.stage,
        letter.reason,
        letter.detail,
        payload,
        letter.at,
    )
