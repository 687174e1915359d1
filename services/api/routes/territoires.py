"""``GET /territoires`` (by name or code) and ``/territoires/{niveau}/{code}``
(one territory, its parent and its members' level): what the web page needs
to find a territory and compare it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from common.referential import EDITIONS, no_edition
from schemas.aggregates import Niveau
from services.api.deps import OTHER_EDITION, EngineDep, TerritoryDep, current_edition_only
from services.api.models import Fiche, Refus, Territoire
from services.api.reads import editions
from services.api.reads import territoires as reads

router = APIRouter()

MEMBERS: dict[str, Niveau | None] = {
    "france": "region",
    "region": "departement",
    "departement": "epci",
    "epci": "commune",
    "commune": None,
}


@router.get(
    "/territoires",
    response_model=list[Territoire],
    responses={422: {"model": Refus, "description": "Invalid parameters, or no such edition"}},
)
def find(
    engine: EngineDep,
    q: Annotated[str, Query(min_length=1, max_length=100, pattern=r"^[^\x00]*$")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    millesime: Annotated[
        int | None,
        Query(
            ge=1900,
            le=2100,
            description=f"The edition of the map: {', '.join(map(str, EDITIONS))}, or a "
            "later one loaded by `itte referentiel charger`; the current one by default.",
        ),
    ] = None,
) -> list[Territoire]:
    """Territories whose name contains `q` (any case), or whose code is `q`,
    on the edition of the map `millesime` (the current one by default)."""
    if millesime is not None:
        served = editions.served(engine)
        if millesime not in served.years:
            raise HTTPException(422, no_edition(millesime, served.years))
        if millesime == served.current:
            millesime = None
    return reads.search(engine, q, limit, millesime)


@router.get(
    "/territoires/{niveau}/{code}",
    response_model=Fiche,
    dependencies=[Depends(current_edition_only)],
    responses={404: {"description": "No such territory"}, 422: OTHER_EDITION},
)
def fiche(engine: EngineDep, territoire: TerritoryDep) -> Fiche:
    """One territory, its parent and the level of its members."""
    parent, departement = reads.parent_and_departement(engine, territoire)
    return Fiche(
        **territoire.model_dump(),
        parent=parent,
        departement=departement,
        membres=MEMBERS[territoire.niveau],
    )
