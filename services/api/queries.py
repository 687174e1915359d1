"""The one query behind ``GET /indicateurs``, built with SQLAlchemy Core.

A territorial filter (commune, epci, departement, region) names an area;
``niveau`` names the granularity inside it. Without ``niveau`` the area itself
is returned (``departement=33`` → the département), without any filter France.
``niveau=epci&departement=74`` → every EPCI with a member commune in 74.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, select, true

from common.db import AGGREGATE_KEY_COLUMNS, aggregate_change_log, aggregate_values, communes
from common.referential import FRANCE

AREA_ORDER = ("commune", "epci", "departement", "region")  # finest first
ROW = tuple(
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
    )
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
    """The page of rows ``filters`` asks for, in a stable order."""
    v = aggregate_values.c
    return (
        matching(filters)
        .order_by(v.indicateur, v.annee, v.code, v.sous_champ)
        .limit(filters.limit)
        .offset(filters.offset)
    )


def count(filters: Filters) -> Select[Any]:
    """How many rows match, all pages together."""
    return select(func.count()).select_from(matching(filters).subquery())


def changes(filters: Filters, after: int, limit: int) -> Select[Any]:
    """The changes numbered after ``after``, oldest first, found through the
    change log (migration 0010). Without a territorial filter nor
    ``niveau``, those of every level. A row changed again is shown once, at
    its latest number and state."""
    v, log = aggregate_values.c, aggregate_change_log.c
    if not filters.areas() and filters.niveau is None:
        return _every_change(filters, after, limit)
    numbered = and_(
        *(v[name] == log[name] for name in AGGREGATE_KEY_COLUMNS), v.change_seq == log.change_seq
    )
    return (
        matching(filters)
        .add_columns(v.change_seq)
        .join(aggregate_change_log, numbered)
        .where(log.change_seq > after)
        .order_by(log.change_seq)
        .limit(limit)
    )


def _every_change(filters: Filters, after: int, limit: int) -> Select[Any]:
    """A page of the log, each entry's row probed by its key: as a join,
    Postgres scanned the whole table for every page (docs/measurements.md).
    An entry whose row is gone (deleted by hand) comes with empty columns,
    so that the page stays full and the cursor moves past it."""
    log = aggregate_change_log.c
    page = _attributes(select(aggregate_change_log).where(log.change_seq > after), filters, log)
    entries = page.order_by(log.change_seq).limit(limit).subquery()
    v = aggregate_values.c
    row = (
        select(*ROW)
        .where(*(v[name] == entries.c[name] for name in AGGREGATE_KEY_COLUMNS))
        .where(v.change_seq == entries.c.change_seq)
        .limit(1)
        .lateral()
    )
    return (
        select(*row.c, entries.c.change_seq)
        .select_from(entries.outerjoin(row, true()))
        .order_by(entries.c.change_seq)
    )


def last_change() -> Select[Any]:
    return select(func.coalesce(func.max(aggregate_change_log.c.change_seq), 0))


def matching(filters: Filters) -> Select[Any]:
    level = filters.target_level()
    v = aggregate_values.c
    query = select(*ROW).where(v.niveau == level)
    areas = filters.areas()
    if list(areas) == [level]:  # the area itself: no need to go through its communes
        query = query.where(v.code == areas[level])
    elif areas and level != "france":
        # Territories of `level` that share a commune with every named area.
        members = select(commune_column(level))
        for area_level, code in areas.items():
            members = members.where(commune_column(area_level) == code)
        query = query.where(v.code.in_(members))
    elif level == "france":
        query = query.where(v.code == FRANCE)
    return _attributes(query, filters)


def _attributes(
    query: Select[Any], filters: Filters, columns: Any = aggregate_values.c
) -> Select[Any]:
    for column in ("indicateur", "annee", "sous_champ"):
        if (value := getattr(filters, column)) is not None:
            query = query.where(columns[column] == value)
    return query
