"""What the routes receive: the engine, the change signal, the open streams,
the kept studies and the pool of ``GET /indicateurs``, read from
``app.state`` (set once by ``create_app``), and the query parameters every
read shares, checked before any query runs. A test mounts one router and
sets the state, or overrides one dependency.

The dependencies that only read state are ``async``: FastAPI runs them in
the event loop, not in the thread pool (a hop per request for nothing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from schemas import limits
from schemas.aggregates import Niveau
from services.api.comparisons import KeptStudies
from services.api.event_stream import Streams
from services.api.models import Refus, Territoire
from services.api.reads import editions, territoires
from services.api.reads.indicateurs import Filters, Statements
from services.api.reads.pool import ReadPool

Changed = Callable[[], int | None]  # a number that moves when the data may have (None: unknown)


async def engine(request: Request) -> Engine:
    return request.app.state.engine


async def changed(request: Request) -> Changed:
    return request.app.state.changed


async def streams(request: Request) -> Streams:
    return request.app.state.streams


async def studies(request: Request) -> KeptStudies:
    return request.app.state.studies


async def read_pool(request: Request) -> ReadPool:
    return request.app.state.read_pool


async def statements(request: Request) -> Statements:
    return request.app.state.statements


EngineDep = Annotated[Engine, Depends(engine)]
ChangedDep = Annotated[Changed, Depends(changed)]
StreamsDep = Annotated[Streams, Depends(streams)]
StudiesDep = Annotated[KeptStudies, Depends(studies)]
ReadPoolDep = Annotated[ReadPool, Depends(read_pool)]
StatementsDep = Annotated[Statements, Depends(statements)]

CommuneCode = Annotated[str | None, Query(pattern=r"^(\d{5}|2[ABab]\d{3})$")]
# What the aggregator can hold (schemas/limits.py): longer text or a NUL
# cannot match anything, and Postgres refuses a NUL.
KeyText = Annotated[str | None, Query(max_length=limits.MAX_KEY_CHARS, pattern=r"^[^\x00]*$")]
# A territory's code in a path: a commune, EPCI, département, région or FR.
CodeParam = Annotated[str, Path(pattern=r"^[0-9A-Za-z]{1,9}$")]
MAX_OFFSET = 2**31 - 1
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


async def area_filters(
    commune: CommuneCode = None,
    epci: Annotated[str | None, Query(pattern=r"^\d{9}$")] = None,
    departement: Annotated[str | None, Query(pattern=r"^(\d{2,3}|2[ABab])$")] = None,
    region: Annotated[str | None, Query(pattern=r"^\d{2,3}$")] = None,
    niveau: Niveau | None = None,
    indicateur: KeyText = None,
    annee: Annotated[
        str | None,
        Query(
            pattern=r"^(\d{4}|derniere)$",
            description="A year (1900-2100), or `derniere`: each territory's latest year "
            "of each indicator and sub-field, among the rows the other filters leave.",
        ),
    ] = None,
    sous_champ: KeyText = None,
    annee_min: Annotated[int | None, Query(ge=1900, le=2100, description="From this year.")] = None,
    annee_max: Annotated[int | None, Query(ge=1900, le=2100, description="To this year.")] = None,
) -> Filters:
    """What to show, without pages (the change feed has its cursor instead)."""
    year = None if annee in (None, "derniere") else int(annee)
    if year is not None and not 1900 <= year <= 2100:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", "annee"),
                    "msg": "a year from 1900 to 2100, or derniere",
                    "input": annee,
                }
            ]
        )
    return Filters(
        commune=commune.upper() if commune else None,
        epci=epci,
        departement=departement.upper() if departement else None,
        region=region,
        niveau=niveau,
        indicateur=indicateur,
        annee=year,
        sous_champ=sous_champ,
        annee_min=annee_min,
        annee_max=annee_max,
        derniere=annee == "derniere",
    )


async def filters(
    area: Annotated[Filters, Depends(area_filters)],
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_LIMIT,
            description=f"Rows per page (JSON default {DEFAULT_LIMIT}); "
            "CSV: every matching row unless given.",
        ),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Filters:
    return replace(area, limit=limit, offset=offset)


# The answer of current_edition_only, for a route's OpenAPI.
OTHER_EDITION = {"model": Refus, "description": "Invalid parameters, or another edition"}


def current_edition_only(
    engine: EngineDep,
    millesime: Annotated[
        int | None,
        Query(ge=1900, le=2100, description="Only the current edition of the map."),
    ] = None,
) -> None:
    """For the reads that follow the aggregator's rows, kept on the current
    edition of the map: another edition is refused, not ignored."""
    if millesime is None:
        return
    current = editions.served(engine).current
    if millesime != current:
        raise HTTPException(
            422,
            f"served on the current edition of the map only ({current}); "
            "GET /indicateurs takes millesime",
        )


def older_edition(engine: Engine, filters: Filters, millesime: int | None) -> int | None:
    """The older edition ``millesime`` names, None for the current one
    (absent or given), else a 422 saying why it cannot answer."""
    if millesime is None:
        return None
    served = editions.served(engine)
    if millesime == served.current:
        return None
    try:
        editions.check(filters, millesime, served)
    except editions.EditionRefused as refused:
        raise HTTPException(422, str(refused)) from None
    return millesime


async def older_edition_from_the_loop(
    engine: Engine, filters: Filters, millesime: int | None
) -> int | None:
    """:func:`older_edition` for a route of the event loop: the editions are
    read only when one is asked for, and in a thread."""
    if millesime is None:
        return None
    return await run_in_threadpool(older_edition, engine, filters, millesime)


AreaDep = Annotated[Filters, Depends(area_filters)]
FiltersDep = Annotated[Filters, Depends(filters)]


def territory(niveau: Niveau, code: CodeParam, engine: EngineDep) -> Territoire:
    """The territory of the path, or a 404. Codes are upper case (2A004,
    FR); any case finds them."""
    found = territoires.find(engine, niveau, code)
    if found is None:
        raise HTTPException(404, "no such territory")
    return found


TerritoryDep = Annotated[Territoire, Depends(territory)]
