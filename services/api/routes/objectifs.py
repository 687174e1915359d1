"""``GET /territoires/{niveau}/{code}/objectifs``: each national objective
brought to the territory's scale, its latest value, and how far it is."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from schemas import limits
from services.api import analysis
from services.api.deps import OTHER_EDITION, EngineDep, TerritoryDep, current_edition_only
from services.api.models import Objectifs, ObjectifTerritoire, number
from services.api.reads import objectifs as reads

router = APIRouter()


@router.get(
    "/territoires/{niveau}/{code}/objectifs",
    response_model=Objectifs,
    dependencies=[Depends(current_edition_only)],
    responses={404: {"description": "No such territory"}, 422: OTHER_EDITION},
)
def objectifs(
    engine: EngineDep,
    territoire: TerritoryDep,
    annee: Annotated[
        int | None,
        Query(
            ge=limits.YEAR_MIN,
            le=limits.YEAR_MAX,
            description="The value of this year or the latest before; default: the latest.",
        ),
    ] = None,
) -> Objectifs:
    """Each national objective of the catalogue brought to the territory
    (its share by inhabitants for a stock, the same value for a rate),
    beside the territory's latest value and the distance to it."""
    found = reads.standing(engine, territoire, annee)
    return Objectifs(
        territoire=territoire,
        population=found.population,
        population_france=found.national,
        objectifs=[
            answer(row, latest, found.population, found.national)
            for row, latest in found.objectives
        ],
    )


def answer(
    row: Any, latest: reads.Latest | None, population: int, national: int
) -> ObjectifTerritoire:
    objectif = analysis.territory_objective(row.valeur, row.echelle, population, national)
    valeur = latest.valeur if latest else None
    complet = latest.complet if latest else None
    ecart = None if valeur is None else valeur - objectif
    return ObjectifTerritoire(
        indicateur=row.indicateur,
        sous_champ=row.sous_champ,
        libelle=row.libelle,
        unite=row.unite,
        sens=row.sens,
        source=row.source,
        echelle=row.echelle,
        annee_objectif=row.annee,
        objectif_national=number(row.valeur),
        objectif=number(objectif),
        annee_valeur=latest.annee if latest else None,
        valeur=number(valeur),
        complet=complet if valeur is not None else None,
        ecart=number(ecart),
        ecart_relatif=float(ecart / objectif) if ecart is not None and objectif else None,
        atteint=analysis.reached(valeur, objectif, row.sens)
        if valeur is not None and complet
        else None,
    )
