"""``GET /indicateurs`` (values and aggregates, paged or as CSV) and
``GET /indicateurs/catalogue``."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from common.referential import EDITIONS
from schemas.catalogue import Indicator
from services.api.deps import (
    DEFAULT_LIMIT,
    EngineDep,
    FiltersDep,
    ReadPoolDep,
    StatementsDep,
    older_edition_from_the_loop,
)
from services.api.exports import Context, download
from services.api.formats import MEDIA, Format, etag, next_link
from services.api.models import ROWS, IndicateurPublic, Refus
from services.api.reads import editions
from services.api.reads import indicateurs as reads
from services.api.reads.indicateurs import Filters, Statements
from services.api.reads.pool import ReadPool
from services.api.streaming import TimedStreamingResponse

router = APIRouter()
PATH = "/indicateurs"

PAGE_HEADERS = {
    "X-Total-Count": {
        "description": "Rows matching, all pages together.",
        "schema": {"type": "integer"},
    },
    "Link": {
        "description": 'The next page: `<…>; rel="next"` (absent on the last).',
        "schema": {"type": "string"},
    },
    "ETag": {
        "description": "Send it back in If-None-Match: 304 while unchanged.",
        "schema": {"type": "string"},
    },
}


@router.get("/indicateurs/catalogue", response_model=list[Indicator])
def catalogue(engine: EngineDep) -> list[Indicator]:
    """Every indicator: label, unit, source, bounds and how it aggregates."""
    return reads.catalogue(engine)


@router.get(
    PATH,
    response_model=list[IndicateurPublic],
    responses={
        200: {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
            "headers": PAGE_HEADERS,
        },
        304: {"description": "Unchanged since the ETag in If-None-Match"},
        422: {"model": Refus, "description": "Invalid parameters, or why an edition cannot answer"},
    },
)
async def indicateurs(
    request: Request,
    engine: EngineDep,
    pool: ReadPoolDep,
    statements: StatementsDep,
    f: FiltersDep,
    exact: Annotated[
        bool, Query(description="`valeur` as decimal text, to the last digit")
    ] = False,
    fmt: Annotated[
        Format,
        Query(
            alias="format",
            description="`csv`: every matching row, streamed, with the indicator's label "
            "and source and the territory's EPCI, département and région; `csv-fr`: the "
            "same with `;` and decimal commas, for a French Excel; `parquet`: the same "
            "columns typed (values as exact decimal text).",
        ),
    ] = "json",
    forme: Annotated[
        Literal["longue", "large"],
        Query(
            description="With `format=csv` or `csv-fr`: `large`, one line a territory and "
            "year and one column an indicator (`indicateur.sous_champ` for a sub-field)."
        ),
    ] = "longue",
    millesime: Annotated[
        int | None,
        Query(
            ge=1900,
            le=2100,
            description="The edition of the map to serve the values on: "
            f"{', '.join(map(str, EDITIONS))}, or later ones loaded since (default: the current). "
            "An older edition is computed at the request from the observations, one "
            "`indicateur` at a time; its rows say `estimee` where a value keyed on a "
            "commune made since was split among its parts by population.",
        ),
    ] = None,
) -> Response:
    """Values at one level (`niveau`) inside an area (`commune`, `epci`,
    `departement`, `region`); without `niveau`, the area itself. One page
    at a time: `X-Total-Count` says how many rows match, `Link` names
    the next page."""
    older = await older_edition_from_the_loop(engine, f, millesime)
    if fmt != "json":  # every row, through a server-side cursor, in the thread pool
        if fmt == "parquet" and forme == "large":
            raise HTTPException(422, "forme=large is a CSV's; Parquet holds the long table")
        context = await run_in_threadpool(Context.read, engine)
        body = await run_in_threadpool(download, engine, f, older, fmt, forme, context)
        suffix = "parquet" if fmt == "parquet" else "csv"
        return TimedStreamingResponse(
            body,
            send_timeout=request.app.state.send_timeout,
            media_type=MEDIA[fmt],
            headers={"Content-Disposition": f'attachment; filename="indicateurs.{suffix}"'},
        )
    if older is not None:
        found = await run_in_threadpool(editions.rows, engine, f, older, exact)
        return page_of(found, f, dict(request.query_params))
    return await json_page(pool, statements, f, exact, dict(request.query_params))


def page_of(found: list[IndicateurPublic], f: Filters, params: dict[str, str]) -> Response:
    """One page of rows computed whole (an older edition's)."""
    limit = f.limit or DEFAULT_LIMIT
    body = ROWS.dump_json(found[f.offset : f.offset + limit])
    return _answer(body, len(found), f.offset, limit, params)


async def json_page(
    pool: ReadPool, statements: Statements, f: Filters, exact: bool, params: dict[str, str]
) -> Response:
    """One page of rows as JSON, its total and the link to the next (also
    the lean route's answer, routes/lean.py)."""
    page = replace(f, limit=f.limit or DEFAULT_LIMIT)
    rows, total = await reads.page(pool, statements, page, exact)
    return _answer(ROWS.dump_json(rows), total, page.offset, page.limit or 0, params)


def _answer(body: bytes, total: int, offset: int, limit: int, params: dict[str, str]) -> Response:
    headers = {"X-Total-Count": str(total), "ETag": etag(body)}
    if link := next_link(PATH, params, offset, limit, total):
        headers["Link"] = link
    return Response(body, media_type="application/json", headers=headers)
