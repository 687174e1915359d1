"""FastAPI app over Postgres, read-only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, TypeAdapter
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sse_starlette import EventSourceResponse, ServerSentEvent

from common import http_metrics
from common.db import indicators, make_engine, referential_meta
from schemas import limits
from schemas.aggregates import Niveau
from schemas.catalogue import Indicator
from services.api import page, territories
from services.api.cache import CacheMiddleware, ChangeListener, NotModified, ResponseCache
from services.api.feed import (
    HEARTBEAT_SECONDS,
    SEND_TIMEOUT_SECONDS,
    STREAM_PAGE,
    Page,
    Streams,
    follow,
    read_changes,
)
from services.api.formats import MEDIA, Format, csv_lines, etag, next_link
from services.api.metrics import LATENCY, REQUESTS
from services.api.queries import Filters, build, count, last_change

CommuneCode = Annotated[str | None, Query(pattern=r"^(\d{5}|2[ABab]\d{3})$")]
# What the aggregator can hold (schemas/limits.py): longer text or a NUL
# cannot match anything, and Postgres refuses a NUL.
KeyText = Annotated[str | None, Query(max_length=limits.MAX_KEY_CHARS, pattern=r"^[^\x00]*$")]
MAX_OFFSET = 2**31 - 1
DEFAULT_LIMIT = 1000
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


class IndicateurPublic(BaseModel):
    indicateur: str
    sous_champ: str
    annee: int
    niveau: Niveau
    code: str
    nom: str
    agregation: str = Field(description="How it aggregates (see /indicateurs/catalogue).")
    valeur: float | int | str | None = Field(
        description="None when no member reported a value; with `exact=true`, a decimal text "
        "with every digit (sums are exact; a ratio or a mean has at least 16 significant "
        "digits)."
    )
    unite: str | None
    communes_renseignees: int
    communes_total: int
    couverture: float = Field(description="communes_renseignees / communes_total")
    complet: bool
    mis_a_jour: datetime


ROWS = TypeAdapter(list[IndicateurPublic])
CSV_COLUMNS = tuple(IndicateurPublic.model_fields)  # the JSON row's fields, in its order


class Changement(IndicateurPublic):
    curseur: int = Field(description="Its place in the change feed: ask from here next time.")


class ChangesPage(BaseModel):
    changements: list[Changement]
    curseur: int = Field(description="Pass it as `depuis` next time.")


def number(value: Decimal | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def exact_text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def to_public(row: Any, exact: bool = False) -> IndicateurPublic:
    reporting, total = row.communes_renseignees, row.communes_total
    return IndicateurPublic(
        indicateur=row.indicateur,
        sous_champ=row.sous_champ,
        annee=row.annee,
        niveau=row.niveau,
        code=row.code,
        nom=row.nom,
        agregation=row.agregation,
        valeur=exact_text(row.valeur) if exact else number(row.valeur),
        unite=row.unite,
        communes_renseignees=reporting,
        communes_total=total,
        couverture=reporting / total if total else 0.0,
        complet=reporting == total,
        mis_a_jour=row.updated_at,
    )


def area_filters(
    commune: CommuneCode = None,
    epci: Annotated[str | None, Query(pattern=r"^\d{9}$")] = None,
    departement: Annotated[str | None, Query(pattern=r"^(\d{2,3}|2[ABab])$")] = None,
    region: Annotated[str | None, Query(pattern=r"^\d{2,3}$")] = None,
    niveau: Niveau | None = None,
    indicateur: KeyText = None,
    annee: Annotated[int | None, Query(ge=1900, le=2100)] = None,
    sous_champ: KeyText = None,
) -> Filters:
    """What to show, without pages (the change feed has its cursor instead)."""
    return Filters(
        commune=commune.upper() if commune else None,
        epci=epci,
        departement=departement.upper() if departement else None,
        region=region,
        niveau=niveau,
        indicateur=indicateur,
        annee=annee,
        sous_champ=sous_champ,
    )


def filters(
    area: Annotated[Filters, Depends(area_filters)],
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=100_000,
            description=f"Rows per page (JSON default {DEFAULT_LIMIT}); "
            "CSV: every matching row unless given.",
        ),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Filters:
    return replace(area, limit=limit, offset=offset)


CACHED = {"/indicateurs": "indicateurs", "/indicateurs/catalogue": "catalogue"}


def create_app(
    engine: Engine,
    cache_bytes: int = 0,
    cors_origins: Sequence[str] = (),
    max_streams: int = 100,
) -> FastAPI:
    """``cache_bytes``: memory for responses kept until the data changes
    (services/api/cache.py); 0: every request goes to the database."""
    cache = ResponseCache(cache_bytes) if cache_bytes else None
    streams = Streams(max_streams)

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

    @app.get("/indicateurs/changements", response_model=ChangesPage)
    def changements(
        f: Annotated[Filters, Depends(area_filters)],
        depuis: Annotated[
            int, Query(ge=0, le=2**63 - 1, description="The cursor of the last change read.")
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        exact: Annotated[bool, Query(description="`valeur` as decimal text")] = False,
    ) -> ChangesPage:
        """The aggregate changes published after the cursor `depuis`, oldest
        first, each at its published state, and the cursor to ask from next
        time: polled with it, each change comes once. `depuis=0`: every
        aggregate's current state, then what follows. Without a territorial
        filter nor `niveau`, the changes of every level."""
        page = read_changes(engine, f, depuis, limit, lambda r: public_row(r, exact))
        return ChangesPage.model_validate({"changements": page.rows, "curseur": page.cursor})

    @app.get(
        "/indicateurs/flux",
        responses={
            200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
            503: {"description": "Too many streams open on this worker (Retry-After)"},
        },
    )
    async def flux(
        request: Request,
        f: Annotated[Filters, Depends(area_filters)],
        depuis: Annotated[
            int | None,
            Query(ge=0, le=2**63 - 1, description="Start after this cursor (default: now)."),
        ] = None,
        last_event_id: Annotated[
            str | None, Header(description="Set by EventSource when it reconnects.")
        ] = None,
    ) -> Response:
        """Every aggregate change as it is published, as Server-Sent Events
        (`event: changement`, `id`: its cursor, `data`: the row). A client that
        reconnects with `Last-Event-ID` (EventSource does) resumes after it:
        no gap, no duplicate. `event: curseur` moves the cursor past changes
        the filters leave out. A comment every 15 s keeps the line open."""
        cursor = resume_at(last_event_id, depuis)
        if cursor is None:
            cursor = await asyncio.to_thread(current_cursor, engine)
        if not streams.admit():
            return JSONResponse(
                {"detail": "too many open streams, retry later"},
                status_code=503,
                headers={"Retry-After": "10"},
            )

        def read(after: int) -> Page:
            return read_changes(engine, f, after, STREAM_PAGE, lambda r: public_row(r, False))

        def changed() -> int | None:
            return cache.generation if cache is not None and cache.live else None

        async def events() -> AsyncIterator[ServerSentEvent]:
            try:
                async for event in follow(read, cursor, changed, request.is_disconnected):
                    yield event
            finally:
                streams.done()

        return EventSourceResponse(
            events(), ping=HEARTBEAT_SECONDS, send_timeout=SEND_TIMEOUT_SECONDS
        )

    return app


def resume_at(last_event_id: str | None, depuis: int | None) -> int | None:
    """The cursor to start after: Last-Event-ID wins (a reconnect), then
    `depuis`; an id that is not a cursor is ignored."""
    if last_event_id is not None and last_event_id.isascii() and last_event_id.isdigit():
        return min(int(last_event_id), 2**63 - 1)
    return depuis


def current_cursor(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(last_change()).scalar_one())


def public_row(row: Any, exact: bool) -> dict[str, Any]:
    return to_public(row, exact).model_dump(mode="json")


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
