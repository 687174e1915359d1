"""Territories by name or code, and each one's parent and members: what the
web page needs to find a territory and compare it (``GET /territoires``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, case, func, literal, or_, select

from common.db import communes, territories
from schemas.aggregates import Niveau

# From the widest to the finest: a territory's members are one step finer.
WIDEST_FIRST: tuple[Niveau, ...] = ("france", "region", "departement", "epci", "commune")
MEMBERS: dict[str, Niveau | None] = {
    "france": "region",
    "region": "departement",
    "departement": "epci",
    "epci": "commune",
    "commune": None,
}


# A territory's code in a path: a commune, EPCI, département, région or FR.
CodeParam = Annotated[str, Path(pattern=r"^[0-9A-Za-z]{1,9}$")]


class Territoire(BaseModel):
    niveau: Niveau
    code: str
    nom: str


class Fiche(Territoire):
    parent: Territoire | None = Field(
        description="Where it belongs: a commune's EPCI (else its département), an EPCI's "
        "main département, a département's région, a région's France."
    )
    membres: Niveau | None = Field(description="The level of its members, for comparison.")


def search(q: str, limit: int) -> Any:
    """Exact codes first, then exact names, then the widest territories."""
    t = territories.c
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rank = case({level: i for i, level in enumerate(WIDEST_FIRST)}, value=t.niveau)
    return (
        select(t.niveau, t.code, t.nom)
        .where(t.niveau != "france", or_(t.code == q.upper(), t.nom.ilike(pattern)))
        .order_by(
            (t.code == q.upper()).desc(), (func.lower(t.nom) == q.lower()).desc(), rank, t.nom
        )
        .limit(limit)
    )


def parent_of(niveau: str, code: str) -> Any:
    """The (niveau, code) of the parent territory, as a query (None for France)."""
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
    if niveau == "departement":
        return select(literal("region"), c.region).where(c.departement == code).limit(1)
    return None


def find_territory(conn: Connection, niveau: str, code: str) -> Territoire:
    """The territory, or a 404. Codes are upper case (2A004, FR); any case finds them."""
    t = territories.c
    found = conn.execute(
        select(t.niveau, t.code, t.nom).where(t.niveau == niveau, t.code == code.upper())
    ).first()
    if found is None:
        raise HTTPException(404, "no such territory")
    return Territoire.model_validate(found._mapping)


def router(engine: Engine) -> APIRouter:
    api = APIRouter()

    @api.get("/territoires", response_model=list[Territoire])
    def find(
        q: Annotated[str, Query(min_length=1, max_length=100, pattern=r"^[^\x00]*$")],
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> list[Territoire]:
        """Territories whose name contains `q` (any case), or whose code is `q`."""
        with engine.connect() as conn:
            return [Territoire.model_validate(r._mapping) for r in conn.execute(search(q, limit))]

    @api.get(
        "/territoires/{niveau}/{code}",
        response_model=Fiche,
        responses={404: {"description": "No such territory"}},
    )
    def fiche(niveau: Niveau, code: CodeParam) -> Fiche:
        """One territory, its parent and the level of its members."""
        t = territories.c
        with engine.connect() as conn:
            found = find_territory(conn, niveau, code)
            query = parent_of(niveau, found.code) if niveau != "region" else None
            up = conn.execute(query).first() if query is not None else None
            parent_key = ("france", "FR") if niveau == "region" else (tuple(up) if up else None)
            parent = (
                conn.execute(
                    select(t.niveau, t.code, t.nom).where(
                        t.niveau == parent_key[0], t.code == parent_key[1]
                    )
                ).first()
                if parent_key
                else None
            )
        return Fiche(
            **found.model_dump(),
            parent=Territoire.model_validate(parent._mapping) if parent else None,
            membres=MEMBERS[niveau],
        )

    return api
