"""What ``GET /indicateurs`` and ``/indicateurs/catalogue`` read.

A territorial filter (commune, epci, departement, region) names an area;
``niveau`` names the granularity inside it. Without ``niveau`` the area itself
is returned (``departement=33`` → the département), without any filter France.
``niveau=epci&departement=74`` → every EPCI with a member commune in 74.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import Engine, Integer, Select, bindparam, func, select
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect

from common.db import aggregate_values, communes, indicators, referential_meta
from common.referential import FRANCE
from schemas.catalogue import Indicator
from services.api.models import IndicateurPublic, to_public
from services.api.reads.pool import ReadPool

AREA_ORDER = ("commune", "epci", "departement", "region")  # finest first
ROW = (
    *(
        aggregate_values.c[name]
        for name in (
            "indicateur",
            "sous_champ",
            "annee",
            "niveau",
            "code",
            "nom",
            "agregation",
            "valeur",
            "unite",
            "communes_renseignees",
            "communes_total",
            "updated_at",
            "origine",
            "valeur_publiee",
            "annee_denominateur",
            "communes_repli",
        )
    ),
    # The current edition, read in the same snapshot as the row.
    select(referential_meta.c.millesime).scalar_subquery().label("millesime"),
)


@dataclass(frozen=True)
class Filters:
    commune: str | None = None
    epci: str | None = None
    departement: str | None = None
    region: str | None = None
    niveau: str | None = None
    indicateur: str | None = None
    annee: int | None = None
    sous_champ: str | None = None
    limit: int | None = None  # None: every matching row
    offset: int = 0
    annee_min: int | None = None
    annee_max: int | None = None
    derniere: bool = False  # each row's latest year only (``annee=derniere``)

    def areas(self) -> dict[str, str]:
        return {level: value for level in AREA_ORDER if (value := getattr(self, level)) is not None}

    def target_level(self) -> str:
        if self.niveau:
            return self.niveau
        areas = self.areas()
        return next(iter(areas)) if areas else "france"


def commune_column(level: str) -> Any:
    """The column of ``communes`` that holds a commune's territory at ``level``."""
    return communes.c.code if level == "commune" else communes.c[level]


def build(filters: Filters) -> Select[Any]:
    """The page of rows ``filters`` asks for, in a stable order. Every value
    taken from ``filters`` is a named parameter (:func:`values`), so that a
    statement compiled once serves every request of the same shape."""
    query = matching(filters)
    c = query.selected_columns
    query = query.order_by(c.indicateur, c.annee, c.code, c.sous_champ)
    if filters.limit is not None:
        query = query.limit(bindparam("limit", filters.limit, type_=Integer))
    return query.offset(bindparam("offset", filters.offset, type_=Integer))


def count(filters: Filters) -> Select[Any]:
    """How many rows match, all pages together."""
    return select(func.count()).select_from(matching(filters).subquery())


def matching(filters: Filters) -> Select[Any]:
    level = filters.target_level()
    v = aggregate_values.c
    query = select(*ROW).where(v.niveau == bindparam("niveau_cible", level))
    areas = filters.areas()
    if list(areas) == [level]:  # the area itself: no need to go through its communes
        query = query.where(v.code == bindparam(level, areas[level]))
    elif areas and level != "france":
        # Territories of `level` that share a commune with every named area.
        members = select(commune_column(level))
        for area_level, code in areas.items():
            members = members.where(commune_column(area_level) == bindparam(area_level, code))
        query = query.where(v.code.in_(members))
    elif level == "france":
        query = query.where(v.code == FRANCE)
    query = attributes(query, filters)
    if filters.derniere:
        # Each territory's latest year of each indicator and sub-field,
        # among the rows the other filters leave.
        latest = func.max(v.annee).over(partition_by=(v.indicateur, v.sous_champ, v.code))
        inner = query.add_columns(latest.label("derniere")).subquery()
        query = select(*(inner.c[c.name] for c in ROW)).where(inner.c.annee == inner.c.derniere)
    return query


ATTRIBUTES = ("indicateur", "annee", "sous_champ")
# The years between two bounds, each included.
RANGES = {"annee_min": ("annee", "__ge__"), "annee_max": ("annee", "__le__")}


def attributes(
    query: Select[Any], filters: Filters, columns: Any = aggregate_values.c
) -> Select[Any]:
    for column in ATTRIBUTES:
        if (value := getattr(filters, column)) is not None:
            query = query.where(columns[column] == bindparam(column, value))
    for bound, (column, compare) in RANGES.items():
        if (value := getattr(filters, bound)) is not None:
            query = query.where(getattr(columns[column], compare)(bindparam(bound, value)))
    return query


def values(filters: Filters) -> dict[str, Any]:
    """The named parameters of :func:`build` and :func:`count` for ``filters``."""
    named: dict[str, Any] = {"niveau_cible": filters.target_level(), **filters.areas()}
    named |= {
        c: getattr(filters, c) for c in (*ATTRIBUTES, *RANGES) if getattr(filters, c) is not None
    }
    if filters.limit is not None:
        named["limit"] = filters.limit
    return named | {"offset": filters.offset}


def shape(filters: Filters) -> tuple[Any, ...]:
    """What decides the text of :func:`build`'s SQL (not its values)."""
    return (
        filters.target_level(),
        tuple(filters.areas()),
        tuple(getattr(filters, c) is not None for c in (*ATTRIBUTES, *RANGES)),
        filters.derniere,
        filters.limit is None,
    )


@dataclass(frozen=True)
class Compiled:
    sql: str  # psycopg's named placeholders: %(departement)s
    constants: dict[str, Any]  # the statement's own parameters (France's code)


class Statements:
    """Each shape of query compiled once, for psycopg: SQLAlchemy builds and
    compiles a statement in about as much CPU as Postgres takes to run it."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[Any, ...], tuple[Compiled, Compiled]] = {}

    def of(self, filters: Filters) -> tuple[Compiled, Compiled]:
        """The page's statement and the count's."""
        key = shape(filters)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = (
                _compiled(build(filters), filters),
                _compiled(count(filters), filters),
            )
        return found


def _compiled(statement: Select[Any], filters: Filters) -> Compiled:
    compiled = statement.compile(dialect=psycopg_dialect.dialect())
    named = values(filters)
    constants = {k: v for k, v in compiled.params.items() if k not in named}
    return Compiled(str(compiled), constants)


async def page(
    pool: ReadPool, statements: Statements, filters: Filters, exact: bool
) -> tuple[list[IndicateurPublic], int]:
    """One page of rows, and how many rows match all pages together."""
    paged, counted = statements.of(filters)
    named = values(filters)

    async def read(conn: AsyncConnection[Any]) -> tuple[list[IndicateurPublic], int]:
        cursor = await conn.execute(paged.sql, paged.constants | named)
        rows = [to_public(row, exact) for row in await cursor.fetchall()]
        # A short page tells the total without counting.
        if len(rows) == filters.limit or (not rows and filters.offset):
            cursor = await conn.execute(counted.sql, counted.constants | named)
            found = await cursor.fetchone()
            return rows, int(found[0]) if found else 0
        return rows, filters.offset + len(rows)

    return await pool.read(read)


def exported(
    engine: Engine, filters: Filters, by_territory: bool = False
) -> Iterator[dict[str, Any]]:
    """Every row ``filters`` matches, exact, read through a server-side
    cursor (a few thousand rows in memory at a time), in one consistent
    snapshot; ``by_territory``: a territory's years together, each year's
    indicators together (the wide table's order)."""
    query = build(filters)
    if by_territory:
        c = query.selected_columns
        query = query.order_by(None).order_by(c.code, c.annee, c.indicateur, c.sous_champ)
    with engine.connect() as conn:
        reading = conn.execution_options(
            isolation_level="REPEATABLE READ", stream_results=True, yield_per=2000
        )
        with reading.begin():
            for row in reading.execute(query):
                yield to_public(row, exact=True).model_dump(mode="json")


def indicators_in(engine: Engine, filters: Filters) -> list[dict[str, Any]]:
    """The (indicator, sub-field) pairs ``filters`` matches: the wide table's columns."""
    found = matching(filters).subquery()
    query = select(found.c.indicateur, found.c.sous_champ).distinct()
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def catalogue(engine: Engine) -> list[Indicator]:
    with engine.connect() as conn:
        rows = conn.execute(select(indicators).order_by(indicators.c.id)).mappings()
        return [Indicator.model_validate(dict(row)) for row in rows]
