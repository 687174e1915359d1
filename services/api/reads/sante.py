"""What ``/readyz`` reads: the referential's version, proof that Postgres answers."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from common.db import referential_meta


class DatabaseAway(Exception):
    """Postgres does not answer; the message says how it failed."""


def referential_version(engine: Engine) -> str:
    try:
        with engine.connect() as conn:
            return str(conn.execute(select(referential_meta.c.version)).scalar())
    except OperationalError as exc:
        raise DatabaseAway(f"database unavailable: {type(exc.orig).__name__}") from exc
