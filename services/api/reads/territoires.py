"""What ``/territoires`` reads: territories by name or code, and each one's
parent."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, case, func, literal, or_, select, union_all

from common.db import communes, edition_communes, edition_territories, territories
from schemas.aggregates import Niveau
from services.api.models import Territoire

# From the widest to the finest: a territory's members are one step finer.
WIDEST_FIRST: tuple[Niveau, ...] = ("france", "region", "departement", "epci", "commune")


def search(engine: Engine, q: str, limit: int, millesime: int | None = None) -> list[Territoire]:
    """Exact codes first, then exact names, then the widest territories, on
    the edition of the map ``millesime`` (an older one; None: the current one)."""
    t = territories.c if millesime is None else on_edition(millesime).c
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rank = case({level: i for i, level in enumerate(WIDEST_FIRST)}, value=t.niveau)
    query = (
        select(t.niveau, t.code, t.nom)
        .where(t.niveau != "france", or_(t.code == q.upper(), t.nom.ilike(pattern)))
        .order_by(
            (t.code == q.upper()).desc(), (func.lower(t.nom) == q.lower()).desc(), rank, t.nom
        )
        .limit(limit)
    )
    with engine.connect() as conn:
        return [Territoire.model_validate(r._mapping) for r in conn.execute(query)]


def on_edition(millesime: int) -> Any:
    """The territories of an older edition, as ``territories`` holds the current ones."""
    c, e = edition_communes.c, edition_territories.c
    return union_all(
        select(literal("commune").label("niveau"), c.code, c.nom).where(c.millesime == millesime),
        select(e.niveau, e.code, e.nom).where(e.millesime == millesime),
    ).subquery("edition")


def territory(conn: Connection, niveau: str, code: str) -> Territoire | None:
    """Codes are upper case (2A004, FR): any case finds them."""
    t = territories.c
    found = conn.execute(
        select(t.niveau, t.code, t.nom).where(t.niveau == niveau, t.code == code.upper())
    ).first()
    return None if found is None else Territoire.model_validate(found._mapping)


def find(engine: Engine, niveau: str, code: str) -> Territoire | None:
    with engine.connect() as conn:
        return territory(conn, niveau, code)


def parent_and_departement(
    engine: Engine, found: Territoire
) -> tuple[Territoire | None, Territoire | None]:
    """Its parent (a commune's EPCI, else its département; an EPCI's main
    département; a département's région; a région's France; None for France)
    and the département a commune lies in, or an EPCI mostly (its parent)."""
    if found.niveau == "france":
        return None, None
    with engine.connect() as conn:
        key = (
            ("france", "FR")
            if found.niveau == "region"
            else conn.execute(parent_of(found.niveau, found.code)).first()
        )
        parent = territory(conn, key[0], key[1]) if key else None
        if found.niveau == "epci" or (parent is not None and parent.niveau == "departement"):
            return parent, parent
        if found.niveau != "commune":
            return parent, None
        code = conn.execute(
            select(communes.c.departement).where(communes.c.code == found.code)
        ).scalar()
        return parent, None if code is None else territory(conn, "departement", code)


def parent_of(niveau: str, code: str) -> Any:
    """The (niveau, code) of the parent of a commune, an EPCI or a département."""
    c = communes.c
    if niveau == "commune":
        return select(
            case((c.epci.is_not(None), "epci"), else_="departement"),
            func.coalesce(c.epci, c.departement),
        ).where(c.code == code)
    if niveau == "epci":
        return (
            select(literal("departement"), c.departement)
            .where(c.epci == code)
            .group_by(c.departement)
            .order_by(func.count().desc(), c.departement)
            .limit(1)
        )
    return select(literal("region"), c.region).where(c.departement == code).limit(1)
