"""An edition of the map no release ships, loaded while the services run
(``itte referentiel charger``, issue #29).

In one transaction, under the locks of ``itte migrate`` and of placing: the
edition's files are kept (``referential_files``, where every service that
starts afterwards reads it), the older editions are loaded again with the
edition that was current among them and every passage computed anew, then
the edition becomes the database's (``referential_meta``, taken for update:
the aggregators' batches in flight finish first, the next ones wait and then
stop, to be restarted on it) and every stored value is placed on it as a
new release's aggregator places them (:func:`placement.place_all`): each
aggregate that moves is recomputed and numbered once. If anything fails,
nothing has changed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, text

from common import db, referential
from common.db.tables import referential_files
from common.migrations import MIGRATION_LOCK
from services.aggregator.placement import PLACING_LOCK, Placed, place_all

HELD = "SELECT version, millesime, placed_version FROM referential_meta"


class Refused(ValueError):
    """An edition the database cannot take: says why."""


@dataclass(frozen=True)
class Charged:
    millesime: int
    version: str
    placed: Placed | None  # None: the database held this edition already
    loading_seconds: float = 0.0  # the files and older editions, the aggregators running
    switch_seconds: float = 0.0  # the edition taken for update: the aggregators wait


def charge(database_url: str, ref: referential.Referential, files: Mapping[str, bytes]) -> Charged:
    """Make ``ref`` (read from ``files``) the database's edition and place the
    stored values on it; else :class:`Refused`, and nothing changed."""
    engine = db.make_engine(database_url)
    try:
        with engine.begin() as conn:
            for lock in (MIGRATION_LOCK, PLACING_LOCK):
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
            held = conn.execute(text(HELD)).first()
            if held is None:
                raise Refused("the database holds no referential: run `itte migrate` first")
            if _refused(held, ref):
                return Charged(ref.millesime, ref.version, None)
            started = time.monotonic()
            _keep(conn, ref.millesime, files)
            db.load_editions(conn)  # before the switch: the aggregators still run
            switched = time.monotonic()
            conn.execute(text(f"{HELD} FOR UPDATE"))
            db.load_referential(conn, ref)
            raw = conn.connection.driver_connection
            assert raw is not None  # a connection in use has its driver's
            placed = place_all(raw, ref, held.placed_version)
        done = time.monotonic()  # committed
    finally:
        engine.dispose()
    return Charged(ref.millesime, ref.version, placed, switched - started, done - switched)


def _refused(held: Any, ref: referential.Referential) -> bool:
    """True when the database holds ``ref`` already; raises when it cannot take it."""
    if ref.millesime <= referential.CURRENT_EDITION:
        raise Refused(
            f"the edition {ref.millesime} ships with this release: "
            f"`itte migrate` loads the editions up to {referential.CURRENT_EDITION}"
        )
    if (held.version, held.millesime) == (ref.version, ref.millesime):
        return True
    if held.millesime is not None and held.millesime > ref.millesime:
        raise Refused(
            f"the database is on the edition {held.millesime} of the map: "
            f"{ref.millesime} is older, and the map never goes back"
        )
    return False


def _keep(conn: Connection, millesime: int, files: Mapping[str, bytes]) -> None:
    """The edition's files, replacing an earlier load of the same year."""
    conn.execute(delete(referential_files).where(referential_files.c.millesime == millesime))
    conn.execute(
        insert(referential_files),
        [
            {"millesime": millesime, "name": name, "content": files[name]}
            for name in referential.FILES
        ],
    )
