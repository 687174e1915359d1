"""National objectives brought to a territory
(``GET /territoires/{niveau}/{code}/objectifs``): the objective at its
scale, its latest value, and how far it is."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, func, select

from common.db import aggregate_values, communes, indicators, objectives
from schemas import limits
from schemas.aggregates import Niveau
from services.api import analysis
from services.api.rows import number
from services.api.territories import CodeParam, Territoire, find_territory

AREA = {
    "commune": communes.c.code,
    "epci": communes.c.epci,
    "departement": communes.c.departement,
    "region": communes.c.region,
}


class ObjectifTerritoire(BaseModel):
    indicateur: str
    sous_champ: str
    libelle: str = Field(description="The objective, as its source words it.")
    unite: str | None
    sens: str = Field(description="hausse: reached at or above; baisse: at or below.")
    source: str
    echelle: str = Field(
        description="population: the national objective × the territory's share of the "
        "population; identique: the national value itself."
    )
    annee_objectif: int
    objectif_national: float | int
    objectif: float | int = Field(description="The objective at the territory's scale.")
    annee_valeur: int | None = Field(description="The latest year with a value (≤ `annee`).")
    valeur: float | int | None
    complet: bool | None = Field(description="Every commune of the territory reported.")
    ecart: float | int | None = Field(description="valeur − objectif.")
    ecart_relatif: float | None = Field(description="ecart / objectif.")
    atteint: bool | None = Field(
        description="By the direction; none when the value is missing or incomplete "
        "(a partial sum says nothing of the whole)."
    )


class Objectifs(BaseModel):
    territoire: Territoire
    population: int = Field(description="Population municipale of the referential's edition.")
    population_france: int
    objectifs: list[ObjectifTerritoire]


def population_of(conn: Connection, niveau: str, code: str) -> int:
    query = select(func.coalesce(func.sum(communes.c.population), 0))
    if niveau in AREA:
        query = query.where(AREA[niveau] == code)
    return int(conn.execute(query).scalar_one())


def latest_value(
    conn: Connection, niveau: str, code: str, indicateur: str, sous_champ: str, upto: int | None
) -> tuple[int, Decimal | None, bool] | None:
    v = aggregate_values.c
    query = (
        select(v.annee, v.valeur, v.communes_renseignees >= v.communes_total)
        .where(
            v.niveau == niveau,
            v.code == code,
            v.indicateur == indicateur,
            v.sous_champ == sous_champ,
        )
        .order_by(v.annee.desc())
        .limit(1)
    )
    if upto is not None:
        query = query.where(v.annee <= upto)
    row = conn.execute(query).first()
    return None if row is None else (row[0], row[1], bool(row[2]))


def answer(
    row: Any, latest: tuple[int, Decimal | None, bool] | None, population: int, national: int
) -> ObjectifTerritoire:
    objectif = analysis.territory_objective(row.valeur, row.echelle, population, national)
    annee_valeur, valeur, complet = latest if latest else (None, None, None)
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
        annee_valeur=annee_valeur,
        valeur=number(valeur),
        complet=complet if valeur is not None else None,
        ecart=number(ecart),
        ecart_relatif=float(ecart / objectif) if ecart is not None and objectif else None,
        atteint=analysis.reached(valeur, objectif, row.sens)
        if valeur is not None and complet
        else None,
    )


def router(engine: Engine) -> APIRouter:
    api = APIRouter()

    @api.get(
        "/territoires/{niveau}/{code}/objectifs",
        response_model=Objectifs,
        responses={404: {"description": "No such territory"}},
    )
    def objectifs(
        niveau: Niveau,
        code: CodeParam,
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
        o, i = objectives.c, indicators.c
        with engine.connect() as conn:
            territoire = find_territory(conn, niveau, code)
            population = population_of(conn, niveau, territoire.code)
            national = population_of(conn, "france", "FR")
            listed = conn.execute(
                select(o.indicateur, o.sous_champ, o.annee, o.valeur, o.echelle, o.libelle,
                       o.source, i.unite, i.sens)
                .join(indicators, i.id == o.indicateur)
                .order_by(o.indicateur, o.sous_champ, o.annee)
            ).all()  # fmt: skip
            found = [
                (row, latest_value(conn, niveau, territoire.code, row.indicateur,
                                   row.sous_champ, annee))
                for row in listed
            ]  # fmt: skip
        answers = [answer(row, latest, population, national) for row, latest in found]
        return Objectifs(
            territoire=territoire,
            population=population,
            population_france=national,
            objectifs=answers,
        )

    return api
