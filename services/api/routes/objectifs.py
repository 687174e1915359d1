"""``GET /territoires/{niveau}/{code}/objectifs``: each national objective
brought to the territory's scale, its latest value, and how far it is."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from schemas import limits
from services.api import analysis, trajectories
from services.api.deps import OTHER_EDITION, EngineDep, TerritoryDep, current_edition_only
from services.api.models import (
    SANS_POSITION,
    Objectifs,
    ObjectifTerritoire,
    PositionTrajectoire,
    SansPosition,
    number,
)
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
    (its share by inhabitants for a stock, the same value for a rate), and
    the territory's own objectives, beside the territory's latest value, the
    distance to it, and where that value stands on the path from the
    objective's baseline (`position`)."""
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
    local = row.niveau != "france"

    def scaled(value: Decimal) -> Decimal:
        if local:  # a territory's own: at its scale already
            return value
        return analysis.territory_objective(value, row.echelle, population, national)

    objectif = scaled(row.valeur)
    reference = None if row.valeur_reference is None else scaled(row.valeur_reference)
    valeur = latest.valeur if latest else None
    complet = latest.complet if latest else None
    ecart = None if valeur is None else valeur - objectif
    position, why = where(row, latest, objectif, reference)
    return ObjectifTerritoire(
        indicateur=row.indicateur,
        sous_champ=row.sous_champ,
        libelle=row.libelle,
        unite=row.unite,
        sens=row.sens,
        source=row.source,
        echelle=row.echelle,
        annee_objectif=row.annee,
        objectif_national=None if local else number(row.valeur),
        objectif=number(objectif),
        annee_valeur=latest.annee if latest else None,
        valeur=number(valeur),
        complet=complet if valeur is not None else None,
        ecart=number(ecart),
        ecart_relatif=float(ecart / objectif) if ecart is not None and objectif else None,
        atteint=analysis.reached(valeur, objectif, row.sens)
        if valeur is not None and complet
        else None,
        portee="locale" if local else "nationale",
        annee_reference=row.annee_reference,
        reference=number(reference),
        trajectoire=row.trajectoire,
        tolerance=float(row.tolerance),
        position=position,
        sans_position=None if why is None else SANS_POSITION[why],
        sans_position_code=why,
    )


def where(
    row: Any, latest: reads.Latest | None, objectif: Decimal, reference: Decimal | None
) -> tuple[PositionTrajectoire | None, SansPosition | None]:
    """The latest value against the path, or why not."""
    if reference is None:
        return None, "sans_reference"
    if latest is None or latest.valeur is None:
        return None, "sans_valeur"
    if not latest.complet:
        return None, "couverture_incomplete"
    path = trajectories.Path(row.annee_reference, reference, row.annee, objectif, row.trajectoire)
    if path.before(latest.annee):
        return None, "avant_reference"
    found = trajectories.stand(path, latest.annee, latest.valeur, row.sens, row.tolerance)
    return PositionTrajectoire(
        annee=found.annee,
        attendu=number(found.attendu),
        ecart=number(found.ecart),
        ecart_relatif=None if found.ecart_relatif is None else float(found.ecart_relatif),
        position=found.position,
        echeance_passee=found.echeance_passee,
    ), None
