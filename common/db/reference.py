"""The reference data every service reads from the database: the catalogue
of indicators and objectives (replaced by the aggregator at each start), the
referential of communes and territories (reloaded when its version
changes)."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text
from sqlalchemy.dialects.postgresql import insert as upsert

from common import referential
from common.db.tables import (
    communes,
    former_codes,
    indicators,
    objectives,
    referential_files,
    referential_meta,
    territories,
)
from schemas.catalogue import Catalogue

log = logging.getLogger(__name__)
# Aggregators starting together each replace the catalogue: one at a time, or
# the second's inserts collide with the first's rows.
CATALOGUE_LOCK = "SELECT pg_advisory_xact_lock(7277414)"


def _territory_rows(ref: referential.Referential) -> list[dict[str, Any]]:
    members: dict[str, Counter[str]] = {
        "epci": Counter(),
        "departement": Counter(),
        "region": Counter(),
    }
    for c in ref.communes.values():
        if c.epci:
            members["epci"][c.epci] += 1
        members["departement"][c.departement] += 1
        members["region"][c.region] += 1
    names = {"epci": ref.epci, "departement": ref.departements, "region": ref.regions}
    rows = [
        {"niveau": "commune", "code": c.code, "nom": c.nom, "communes_total": 1}
        for c in ref.communes.values()
    ]
    for niveau, counts in members.items():
        rows += [
            {
                "niveau": niveau,
                "code": code,
                "nom": names[niveau].get(code, code),
                "communes_total": n,
            }
            for code, n in counts.items()
        ]
    rows.append(
        {
            "niveau": "france",
            "code": referential.FRANCE,
            "nom": "France",
            "communes_total": len(ref.communes),
        }
    )
    return rows


def load_catalogue(engine: Engine, catalogue: Catalogue) -> None:
    """Replace the indicators and objectives by ``catalogue`` (the aggregator's, at each start)."""
    with engine.begin() as conn:
        conn.execute(text(CATALOGUE_LOCK))
        conn.execute(indicators.delete())
        conn.execute(objectives.delete())
        conn.execute(insert(indicators), [i.model_dump() for i in catalogue.indicateurs.values()])
        if catalogue.objectifs:
            conn.execute(insert(objectives), [o.model_dump() for o in catalogue.objectifs])


def load_referential(conn: Connection, ref: referential.Referential) -> None:
    """Communes, territories and former codes, reloaded when the version
    changes, unless the database holds a later edition (loaded by `itte
    referentiel charger`): a release never takes the map back. The stored
    values stay placed on the earlier one until the aggregator places them
    again (services/aggregator/placement.py); in a new database there are
    none, so they are placed on this one."""
    held = conn.execute(
        select(
            referential_meta.c.version,
            referential_meta.c.placed_version,
            referential_meta.c.millesime,
        )
    )
    found = held.first()
    if found is not None and (found.version, found.millesime) == (ref.version, ref.millesime):
        return
    if found is not None and (found.millesime or 0) > ref.millesime:
        log.info(
            "the database holds the edition %s (%s), later than this release's %s: kept",
            found.millesime,
            found.version,
            ref.millesime,
        )
        return
    placed = found.placed_version if found is not None else ref.version
    for table in (communes, territories, former_codes):
        conn.execute(table.delete())
    conn.execute(
        insert(communes),
        [
            {
                "code": c.code,
                "nom": c.nom,
                "departement": c.departement,
                "region": c.region,
                "epci": c.epci,
                "population": c.population,
            }
            for c in ref.communes.values()
        ],
    )
    conn.execute(insert(territories), _territory_rows(ref))
    conn.execute(
        insert(former_codes), [{"ancien": a, "actuel": b} for a, b in ref.former_codes.items()]
    )
    # Updated in place, not deleted: an aggregator waiting on the row
    # (services/aggregator/store.py same_edition) then reads the new one.
    meta = {"version": ref.version, "millesime": ref.millesime, "loaded_at": text("now()")}
    conn.execute(
        upsert(referential_meta)
        .values(id=1, placed_version=placed, **meta)
        .on_conflict_do_update(index_elements=["id"], set_=meta)
    )
    log.info(
        "loaded referential %s, edition %s (%d communes)",
        ref.version,
        ref.millesime,
        len(ref.communes),
    )


def current_referential(conn: Connection) -> referential.Referential:
    """The edition the database is on: the shipped one, or one loaded since
    by `itte referentiel charger` (read from its files). A database of
    another release's edition gives the shipped one: the services then say
    that the two differ (services/aggregator/placement.py)."""
    shipped = referential.load()
    found = conn.execute(select(referential_meta.c.version, referential_meta.c.millesime)).first()
    if found is None or found.millesime is None or found.millesime <= shipped.millesime:
        return shipped
    return charged(conn, found.millesime)


def charged(conn: Connection, millesime: int) -> referential.Referential:
    """An edition loaded by `itte referentiel charger`, from its files."""
    query = select(referential_files.c.name, referential_files.c.content).where(
        referential_files.c.millesime == millesime
    )
    files = {name: bytes(content) for name, content in conn.execute(query).tuples()}
    return referential.from_files(files, millesime)


def charged_editions(conn: Connection) -> list[int]:
    """The years of the editions `itte referentiel charger` loaded."""
    return list(
        conn.execute(
            select(referential_files.c.millesime).distinct().order_by(referential_files.c.millesime)
        ).scalars()
    )
