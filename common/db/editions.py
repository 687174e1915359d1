"""Loading the older editions of the map (migration 0017) from the shipped
referential: each edition's communes and territories, and the passage of
every code onto its communes (common/referential/editions.py). Reloaded
when the shipped versions change; about 300,000 rows, by COPY."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, select

from common import referential
from common.db.reference import territory_rows
from common.db.tables import edition_communes, edition_passage, edition_territories, editions
from common.referential.editions import passage, splits

log = logging.getLogger(__name__)


def load_editions(conn: Connection) -> None:
    """Every edition of :data:`referential.EDITIONS`, unless the database
    holds these versions already."""
    shipped = {year: referential.edition(year) for year in referential.EDITIONS}
    held = dict(conn.execute(select(editions.c.millesime, editions.c.version)).tuples().all())
    if held == {year: ref.version for year, ref in shipped.items()}:
        return
    for table in (editions, edition_communes, edition_territories, edition_passage):
        conn.execute(table.delete())
    maps = list(shipped.values())
    for index, (year, ref) in enumerate(shipped.items()):
        conn.execute(
            editions.insert(),
            {"millesime": year, "version": ref.version, "communes_total": len(ref.communes)},
        )
        _copy(conn, edition_communes, ((year, *_commune(c)) for c in ref.communes.values()))
        _copy(
            conn,
            edition_territories,
            (
                (year, t["niveau"], t["code"], t["nom"], t["communes_total"])
                for t in territory_rows(ref)
                if t["niveau"] != "commune"
            ),
        )
        if year != referential.CURRENT_EDITION:
            _copy(conn, edition_passage, _passages(year, ref, maps[index + 1 :], shipped))
    log.info("loaded editions %s", ", ".join(map(str, shipped)))


def _commune(c: referential.Commune) -> tuple[Any, ...]:
    return c.code, c.nom, c.departement, c.region, c.epci, c.population


def _passages(
    year: int,
    ref: referential.Referential,
    later: Sequence[referential.Referential],
    shipped: dict[int, referential.Referential],
) -> Iterable[tuple[Any, ...]]:
    # edition_passage's columns: millesime, code, cle, commune, part, total.
    for p in passage(ref, later):
        yield year, p.code, year, p.commune, p.part, p.total
    for keyed_year, keyed in shipped.items():
        if keyed_year > year:
            for p in splits(ref, keyed):
                yield year, p.code, keyed_year, p.commune, p.part, p.total


def _copy(conn: Connection, table: Any, rows: Iterable[tuple[Any, ...]]) -> None:
    """``rows`` in ``table``'s column order, by COPY."""
    raw = conn.connection.driver_connection
    assert raw is not None  # a connection in use has its driver's
    columns = ", ".join(c.name for c in table.columns)
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
