"""``GET /groupements``, ``/groupements/{code}`` and
``/groupements/{code}/indicateurs``: the groupings of communes users
defined (``itte grouping load``), and every indicator over one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from schemas import limits
from services.api.deps import EngineDep, KeyText, older_edition
from services.api.models import Groupement, GroupementFiche, Refus, ValeurGroupement
from services.api.reads import editions
from services.api.reads import groupements as reads
from services.api.reads.indicateurs import Filters

router = APIRouter()
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such grouping"}}
CodeParam = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]


def grouping(code: CodeParam, engine: EngineDep) -> GroupementFiche:
    found = reads.fiche(engine, code)
    if found is None:
        raise HTTPException(404, "no such grouping")
    return found


GroupingDep = Annotated[GroupementFiche, Depends(grouping)]


@router.get("/groupements", response_model=list[Groupement])
def groupements(engine: EngineDep) -> list[Groupement]:
    """Every grouping of communes defined here (a SCoT, a PETR, a watershed…)."""
    return reads.listed(engine)


@router.get("/groupements/{code}", response_model=GroupementFiche, responses=NOT_FOUND)
def fiche(found: GroupingDep) -> GroupementFiche:
    """One grouping and its communes."""
    return found


@router.get(
    "/groupements/{code}/indicateurs",
    response_model=list[ValeurGroupement],
    responses={
        **NOT_FOUND,
        422: {"model": Refus, "description": "Invalid parameters, or why an edition cannot"},
    },
)
def indicateurs(
    engine: EngineDep,
    found: GroupingDep,
    indicateur: KeyText = None,
    annee: Annotated[int | None, Query(ge=limits.YEAR_MIN, le=limits.YEAR_MAX)] = None,
    sous_champ: KeyText = None,
    exact: Annotated[
        bool, Query(description="`valeur` as decimal text, to the last digit")
    ] = False,
    millesime: Annotated[
        int | None,
        Query(
            ge=1900,
            le=2100,
            description="The edition of the map: on an older one, the edition's communes "
            "within the grouping's, one `indicateur` at a time (see /indicateurs).",
        ),
    ] = None,
) -> list[ValeurGroupement]:
    """Every indicator aggregated over the grouping's communes, as over an
    EPCI, computed at the time of the request."""
    asked = Filters(indicateur=indicateur, annee=annee, sous_champ=sous_champ)
    if (older := older_edition(engine, asked, millesime)) is not None:
        return editions.grouping_values(engine, found.code, asked, older, exact)
    return reads.values(
        engine, found, exact, indicateur=indicateur, annee=annee, sous_champ=sous_champ
    )
