"""The API's app: its state (the engine, the change signal, the open
streams, the kept studies), its middleware and its routers. Read-only
over Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from psycopg_pool import PoolTimeout
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.routing import Route

from common import http_metrics
from common.db import make_engine
from services.api.cache import CacheMiddleware, ChangeListener, NotModified, ResponseCache
from services.api.comparisons import Busy, KeptStudies
from services.api.deps import Changed
from services.api.event_stream import Streams
from services.api.headers import SecurityHeaders
from services.api.reads.comparaison import Unanswerable
from services.api.reads.indicateurs import Statements
from services.api.reads.pool import STATEMENT_TIMEOUT_MS, ReadPool, session_options
from services.api.routes import (
    changements,
    comparaison,
    groupements,
    indicateurs,
    lean,
    objectifs,
    page,
    sante,
    territoires,
)
from services.api.streaming import SEND_TIMEOUT_SECONDS

# The answers the response cache may keep.
CACHED = frozenset({"/indicateurs", "/indicateurs/catalogue", "/typologies"})
ROUTERS = (
    sante.router,
    indicateurs.router,
    changements.router,
    territoires.router,
    comparaison.router,
    objectifs.router,
    groupements.router,
    page.router,
)


def create_app(
    engine: Engine,
    cache_bytes: int = 0,
    cors_origins: Sequence[str] = (),
    max_streams: int = 100,
    streams_per_client: int = 10,
    statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
    send_timeout: float = SEND_TIMEOUT_SECONDS,
) -> FastAPI:
    """``cache_bytes``: memory for responses kept until the data changes
    (services/api/cache.py); 0: every request goes to the database;
    ``statement_timeout_ms``: as the engine's (read_only_engine);
    ``send_timeout``: the longest a CSV's reader may take for one chunk."""
    cache = ResponseCache(cache_bytes) if cache_bytes else None
    changed: Changed = cache.current if cache is not None else unknown
    app = FastAPI(
        title="itte API",
        version="0.1.0",
        description="Indicateurs territoriaux de la transition écologique: values per "
        "commune and running aggregates per EPCI, département, région and France.",
        lifespan=lifespan(engine, cache),
    )
    app.state.engine = engine
    app.state.changed = changed
    app.state.streams = Streams(max_streams, streams_per_client)
    app.state.send_timeout = send_timeout
    app.state.studies = KeptStudies(changed)
    # As many connections as the engine keeps (ITTE_API_POOL_SIZE).
    app.state.read_pool = ReadPool(
        libpq_url(engine),
        engine.pool.size(),  # type: ignore[attr-defined]
        statement_timeout_ms,
    )
    app.state.statements = Statements()
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
    app.add_middleware(SecurityHeaders)  # outside the cache: its answers and 304s too
    http_metrics.instrument(app, known=CACHED)
    for router in ROUTERS:
        app.include_router(router)
    app.router.routes.insert(0, lean_route())
    app.mount("/static", StaticFiles(directory=page.STATIC), name="static")
    for away in (OperationalError, psycopg.OperationalError, PoolTimeout):
        app.add_exception_handler(away, database_away)
    app.add_exception_handler(Unanswerable, unanswerable)
    app.add_exception_handler(Busy, busy)
    return app


def lean_route() -> Route:
    """The lean reading of ``GET /indicateurs``, tried before FastAPI's
    (routes/lean.py), which it falls back to; OpenAPI shows FastAPI's."""
    full = next(
        r for r in indicateurs.router.routes if isinstance(r, APIRoute) and r.path == lean.PATH
    )
    return Route(lean.PATH, lean.LeanIndicateurs(full.app), include_in_schema=False)


def unknown() -> int | None:
    return None  # without the cache's listener, nothing says when the data changes


def libpq_url(engine: Engine) -> str:
    """The engine's database, as psycopg and libpq name it."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def lifespan(
    engine: Engine, cache: ResponseCache | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """While the app runs: the pool of ``GET /indicateurs``, and with a
    cache the change listener."""

    @asynccontextmanager
    async def running(app: FastAPI) -> AsyncIterator[None]:
        reads: ReadPool = app.state.read_pool
        await reads.open()
        listener = ChangeListener(libpq_url(engine), cache) if cache is not None else None
        if listener is not None:
            listener.start()
        try:
            yield
        finally:
            if listener is not None:
                listener.stop()
            await reads.close()

    return running


async def database_away(request: Request, exc: Exception) -> JSONResponse:
    """Postgres away (a restart, say), or a statement past its time: 503, not
    a 500 that pages for a bug. The pool drops its broken connections: the
    next request reconnects."""
    slow = isinstance(getattr(exc, "orig", exc), psycopg.errors.QueryCanceled)
    return JSONResponse(
        {"detail": "the query took too long, narrow it or retry later"}
        if slow
        else {"detail": "database unavailable, retry later"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def unanswerable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


async def busy(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})


def read_only_engine(
    database_url: str, pool_size: int, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS
) -> Engine:
    # Autocommit: one round trip per query (no BEGIN/ROLLBACK around it); the
    # session stays read-only through default_transaction_read_only.
    return make_engine(
        database_url,
        pool_size=pool_size,
        isolation_level="AUTOCOMMIT",
        # A ping before each use: a connection a database restart broke is
        # replaced, not answered with a 503 (one per connection of the pool).
        # The hottest read, GET /indicateurs, goes through reads/pool.py.
        pre_ping=True,
        connect_args={"options": session_options(statement_timeout_ms)},
    )
