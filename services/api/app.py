"""FastAPI app over Postgres, read-only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from common import http_metrics
from common.db import indicators, make_engine, referential_meta
from schemas.catalogue import Indicator
from services.api import comparison, feed_routes, objectives, page, territories
from services.api.cache import CacheMiddleware, ChangeListener, NotModified, ResponseCache
from services.api.feed import Streams
from services.api.formats import MEDIA, Format, csv_lines, etag, next_link
from services.api.metrics import LATENCY, REQUESTS
from services.api.params import DEFAULT_LIMIT, filters
from services.api.queries import Filters, build, count
from services.api.rows import CSV_COLUMNS, ROWS, IndicateurPublic, to_public

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


CACHED = {
    "/indicateurs": "indicateurs",
    "/indicateurs/catalogue": "catalogue",
    "/typologies": "typologies",
}


def create_app(
    engine: Engine,
    cache_bytes: int = 0,
    cors_origins: Sequence[str] = (),
    max_streams: int = 100,
) -> FastAPI:
    """``cache_bytes``: memory for responses kept until the data changes
    (services/api/cache.py); 0: every request goes to the database."""
    cache = ResponseCache(cache_bytes) if cache_bytes else None

    def changed() -> int | None:
        return cache.generation if cache is not None and cache.live else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if cache is None:
            yield
            return
        libpq_url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        listener = ChangeListener(libpq_url, cache)
        listener.start()
        try:
            yield
        finally:
            listener.stop()

    app = FastAPI(
        title="itte API",
        version="0.1.0",
        description="Indicateurs territoriaux de la transition écologique: values per "
        "commune and running aggregates per EPCI, département, région and France.",
        lifespan=lifespan,
    )
    if cache is not None:
        app.add_middleware(CacheMiddleware, cache=cache, paths=CACHED)
    app.add_middleware(NotModified)  # outside the cache: its answers get 304s too
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET"],
            expose_headers=["X-Total-Count", "Link", "ETag"],
        )
    http_metrics.instrument(app, known=frozenset(CACHED))
    app.include_router(territories.router(engine))
    app.include_router(feed_routes.router(engine, Streams(max_streams), changed))
    app.include_router(comparison.router(engine, changed))
    app.include_router(objectives.router(engine))
    page.mount(app)

    @app.exception_handler(OperationalError)
    async def database_away(request: Request, exc: OperationalError) -> JSONResponse:
        """Postgres away (a restart, say): 503, not a 500 that pages for a bug.
        The pool drops its broken connections: the next request reconnects."""
        return JSONResponse(
            {"detail": "database unavailable, retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.get("/livez")
    def livez() -> dict[str, str]:
        """The process runs and answers."""
        return {"status": "ok", "service": "api"}

    @app.get("/readyz")
    @app.get("/health")
    def readyz() -> JSONResponse:
        """Ready: Postgres answers (503 with the reason otherwise)."""
        try:
            with engine.connect() as conn:
                version = conn.execute(select(referential_meta.c.version)).scalar()
        except OperationalError as exc:
            reason = f"database unavailable: {type(exc.orig).__name__}"
            return JSONResponse(
                {"status": "failing", "service": "api", "reason": reason}, status_code=503
            )
        return JSONResponse({"status": "ok", "service": "api", "referential": str(version)})

    @app.get("/indicateurs/catalogue", response_model=list[Indicator])
    def catalogue() -> list[Indicator]:
        """Every indicator: label, unit, source, bounds and how it aggregates."""
        REQUESTS.labels("catalogue").inc()
        with LATENCY.labels("catalogue").time(), engine.connect() as conn:
            rows = conn.execute(select(indicators).order_by(indicators.c.id)).mappings()
            return [Indicator.model_validate(dict(row)) for row in rows]

    @app.get(
        "/indicateurs",
        response_model=list[IndicateurPublic],
        responses={
            200: {
                "content": {"text/csv": {"schema": {"type": "string"}}},
                "headers": PAGE_HEADERS,
            },
            304: {"description": "Unchanged since the ETag in If-None-Match"},
        },
    )
    def indicateurs(
        request: Request,
        f: Annotated[Filters, Depends(filters)],
        exact: Annotated[
            bool, Query(description="`valeur` as decimal text, to the last digit")
        ] = False,
        fmt: Annotated[
            Format,
            Query(
                alias="format",
                description="`csv`: every matching row, streamed; `csv-fr`: the same "
                "with `;` and decimal commas, for a French Excel.",
            ),
        ] = "json",
    ) -> Response:
        """Values at one level (`niveau`) inside an area (`commune`, `epci`,
        `departement`, `region`); without `niveau`, the area itself. One page
        at a time: `X-Total-Count` says how many rows match, `Link` names
        the next page."""
        REQUESTS.labels("indicateurs").inc()
        if fmt != "json":
            return StreamingResponse(
                csv_lines(exported(engine, f), CSV_COLUMNS, fmt),
                media_type=MEDIA[fmt],
                headers={"Content-Disposition": 'attachment; filename="indicateurs.csv"'},
            )
        page = replace(f, limit=f.limit or DEFAULT_LIMIT)
        with LATENCY.labels("indicateurs").time(), engine.connect() as conn:
            rows = [to_public(row, exact) for row in conn.execute(build(page))]
            # A short page tells the total without counting.
            full = len(rows) == page.limit or (not rows and page.offset)
            total = conn.execute(count(page)).scalar_one() if full else page.offset + len(rows)
        body = ROWS.dump_json(rows)
        headers = {"X-Total-Count": str(total), "ETag": etag(body)}
        params = dict(request.query_params)
        if link := next_link(request.url.path, params, page.offset, page.limit or 0, total):
            headers["Link"] = link
        return Response(body, media_type="application/json", headers=headers)

    return app


def exported(engine: Engine, f: Filters) -> Iterator[dict[str, Any]]:
    """Every row ``f`` matches, exact, read through a server-side cursor (a
    few thousand rows in memory at a time), in one consistent snapshot."""
    with engine.connect() as conn:
        reading = conn.execution_options(
            isolation_level="REPEATABLE READ", stream_results=True, yield_per=2000
        )
        with reading.begin():
            for row in reading.execute(build(f)):
                yield to_public(row, exact=True).model_dump(mode="json")


def read_only_engine(database_url: str, pool_size: int) -> Engine:
    # Autocommit: one round trip per query (no BEGIN/ROLLBACK around it); the
    # session stays read-only through default_transaction_read_only.
    return make_engine(
        database_url,
        pool_size=pool_size,
        isolation_level="AUTOCOMMIT",
        # No ping before each request (a round trip); a connection broken by a
        # database restart is dropped on its first error instead.
        pre_ping=False,
        connect_args={"options": "-c default_transaction_read_only=on"},
    )
