"""Postgres adapter: which records of each pushed batch are in the results
(``batch_progress``, one bit per record; migration 0005).

Only batches the ingestor recorded (``ingest_batches``: pushed over HTTP) are
marked; the others (files, Kafka-native producers) have no one to tell.
Marks are ORed in, so a replay counts nothing twice whatever the way its
records are grouped. Rows are written in batch id order: two aggregators
marking the same batches lock them in the same order.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from common import db

MARK = """
INSERT INTO batch_progress AS p (batch_id, clean)
SELECT m.batch_id, m.mask::varbit
FROM unnest(%s::text[], %s::text[]) AS m(batch_id, mask)
WHERE EXISTS (SELECT 1 FROM ingest_batches b WHERE b.batch_id = m.batch_id)
ORDER BY m.batch_id
ON CONFLICT (batch_id) DO UPDATE SET clean =
    rpad(p.clean::text, greatest(length(p.clean), length(EXCLUDED.clean)), '0')::varbit
    | rpad(EXCLUDED.clean::text, greatest(length(p.clean), length(EXCLUDED.clean)), '0')::varbit
"""


def mask(positions: Collection[int]) -> str:
    """'0'/'1' text with a 1 at each (1-based) position."""
    bits = bytearray(b"0" * max(positions, default=0))
    for position in positions:
        if position > 0:
            bits[position - 1] = ord("1")
    return bits.decode()


class PostgresProgress:
    def __init__(self, database_url: str) -> None:
        self._db = db.KeptConnection(database_url)

    def mark(self, clean: Mapping[str, Collection[int]]) -> None:
        batches = sorted(b for b, positions in clean.items() if positions)
        if not batches:
            return
        conn = self._db.get()
        with conn.transaction():
            conn.execute(MARK, (batches, [mask(clean[b]) for b in batches]))

    def close(self) -> None:
        self._db.close()
