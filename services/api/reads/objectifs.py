"""What ``/territoires/{niveau}/{code}/objectifs`` reads: the catalogue's
national objectives and the territory's own, populations, and a territory's
latest values."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select

from common.db import aggregate_values, communes, indicators, objectives
from services.api.models import Territoire

AREA = {
    "commune": communes.c.code,
    "epci": communes.c.epci,
    "departement": communes.c.departement,
    "region": communes.c.region,
}


@dataclass(frozen=True)
class Latest:
    annee: int
    valeur: Decimal | None
    complet: bool


@dataclass(frozen=True)
class Standing:
    """Everything an answer is made of, read in one connection."""

    population: int
    national: int  # France's population
    objectives: list[tuple[Any, Latest | None]]  # each objective's row, the latest value


def standing(engine: Engine, territoire: Territoire, upto: int | None) -> Standing:
    o, i = objectives.c, indicators.c
    with engine.connect() as conn:
        population = population_of(conn, territoire.niveau, territoire.code)
        national = population_of(conn, "france", "FR")
        listed = conn.execute(
            select(o.indicateur, o.sous_champ, o.annee, o.valeur, o.echelle, o.libelle,
                   o.source, o.annee_reference, o.valeur_reference, o.trajectoire,
                   o.tolerance, o.niveau, i.unite, i.sens)
            .join(indicators, i.id == o.indicateur)
            # The national objectives, and the territory's own.
            .where(or_(o.niveau == "france",
                       and_(o.niveau == territoire.niveau, o.code == territoire.code)))
            .order_by(o.indicateur, o.sous_champ, o.annee, o.niveau != "france")
        ).all()  # fmt: skip
        found = [(row, latest_value(conn, territoire, row, upto)) for row in listed]
    return Standing(population, national, found)


def population_of(conn: Connection, niveau: str, code: str) -> int:
    query = select(func.coalesce(func.sum(communes.c.population), 0))
    if niveau in AREA:
        query = query.where(AREA[niveau] == code)
    return int(conn.execute(query).scalar_one())


def latest_value(
    conn: Connection, territoire: Territoire, objective: Any, upto: int | None
) -> Latest | None:
    """The latest value of the objective's indicator, of ``upto`` or before."""
    v = aggregate_values.c
    query = (
        select(v.annee, v.valeur, v.communes_renseignees >= v.communes_total)
        .where(
            v.niveau == territoire.niveau,
            v.code == territoire.code,
            v.indicateur == objective.indicateur,
            v.sous_champ == objective.sous_champ,
        )
        .order_by(v.annee.desc())
        .limit(1)
    )
    if upto is not None:
        query = query.where(v.annee <= upto)
    row = conn.execute(query).first()
    return None if row is None else Latest(row[0], row[1], bool(row[2]))
