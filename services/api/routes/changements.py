"""The change feed: ``GET /indicateurs/changements`` (pages after a cursor)
and ``GET /indicateurs/flux`` (Server-Sent Events), in the same cursor
space. What is read is in ``reads/changements.py``, how a stream is
followed in ``event_stream.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from services.api.deps import (
    OTHER_EDITION,
    AreaDep,
    ChangedDep,
    EngineDep,
    StreamsDep,
    older_edition,
    older_edition_from_the_loop,
)
from services.api.event_stream import (
    HEARTBEAT_SECONDS,
    SEND_TIMEOUT_SECONDS,
    STREAM_PAGE,
    Refusal,
    follow,
)
from services.api.models import ChangesPage
from services.api.reads import editions
from services.api.reads.changements import Page, current_cursor, read_changes
from services.api.reads.indicateurs import Filters

router = APIRouter()
CURSOR_MAX = 2**63 - 1
Millesime = Annotated[
    int | None,
    Query(
        ge=1900,
        le=2100,
        description="Follow the changes on an older edition of the map, one `indicateur` at "
        "a time: each page holds the rows of that edition its changes reach, at their state "
        "now, each with the page's starting cursor (resumed from there, they come again).",
    ),
]


@router.get(
    "/indicateurs/changements",
    response_model=ChangesPage,
    responses={422: OTHER_EDITION},
)
def changements(
    engine: EngineDep,
    f: AreaDep,
    depuis: Annotated[
        int, Query(ge=0, le=CURSOR_MAX, description="The cursor of the last change read.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    exact: Annotated[bool, Query(description="`valeur` as decimal text")] = False,
    millesime: Millesime = None,
) -> ChangesPage:
    """The aggregate changes published after the cursor `depuis`, oldest
    first, each at its published state, and the cursor to ask from next
    time: polled with it, each change comes once. `depuis=0`: every
    aggregate's current state, then what follows. Without a territorial
    filter nor `niveau`, the changes of every level."""
    every_year(f)
    older = older_edition(engine, f, millesime)
    if older is not None:
        page = editions.changes(engine, f, older, depuis, limit, exact)
    else:
        page = read_changes(engine, f, depuis, limit, exact)
    return ChangesPage.model_validate({"changements": page.rows, "curseur": page.cursor})


@router.get(
    "/indicateurs/flux",
    responses={
        422: OTHER_EDITION,
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        429: {"description": "Too many streams open from this address (Retry-After)"},
        503: {"description": "Too many streams open on this worker (Retry-After)"},
    },
)
async def flux(
    request: Request,
    engine: EngineDep,
    changed: ChangedDep,
    streams: StreamsDep,
    f: AreaDep,
    depuis: Annotated[
        int | None,
        Query(ge=0, le=CURSOR_MAX, description="Start after this cursor (default: now)."),
    ] = None,
    last_event_id: Annotated[
        str | None, Header(description="Set by EventSource when it reconnects.")
    ] = None,
    millesime: Millesime = None,
) -> Response:
    """Every aggregate change as it is published, as Server-Sent Events
    (`event: changement`, `id`: its cursor, `data`: the row). A client that
    reconnects with `Last-Event-ID` (EventSource does) resumes after it:
    no gap, no duplicate. `event: curseur` moves the cursor past changes
    the filters leave out. A comment every 15 s keeps the line open."""
    every_year(f)
    older = await older_edition_from_the_loop(engine, f, millesime)
    try:
        cursor = resume_at(last_event_id, depuis)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    if cursor is None:
        cursor = await asyncio.to_thread(current_cursor, engine)
    slot = streams.admit(request.client.host if request.client else "")
    if isinstance(slot, Refusal):
        return JSONResponse(
            {"detail": slot.value},
            status_code=503 if slot is Refusal.FULL else 429,
            headers={"Retry-After": "10"},
        )

    def read(after: int) -> Page:
        if older is not None:
            return editions.changes(engine, f, older, after, STREAM_PAGE)
        return read_changes(engine, f, after, STREAM_PAGE)

    async def gone() -> bool:
        return slot.dropped or await request.is_disconnected()

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            async for event in follow(read, cursor, changed, gone):
                streams.sent(slot)
                yield event
        finally:
            streams.done(slot)

    return EventSourceResponse(events(), ping=HEARTBEAT_SECONDS, send_timeout=SEND_TIMEOUT_SECONDS)


def every_year(f: Filters) -> None:
    """A change is of one year: ``annee=derniere`` names none."""
    if f.derniere:
        raise HTTPException(422, "annee=derniere is for GET /indicateurs; follow a year or all")


def resume_at(last_event_id: str | None, depuis: int | None) -> int | None:
    """The cursor to start after: Last-Event-ID wins (a reconnect), then
    `depuis`; an id that is not a number is ignored (not one of ours); a
    number past any cursor raises ValueError (as `depuis` would be refused)."""
    if last_event_id is None or not (last_event_id.isascii() and last_event_id.isdigit()):
        return depuis
    # Its length first: int() of over 4,300 digits raises, of millions is slow.
    digits = last_event_id.lstrip("0") or "0"
    if len(digits) > len(str(CURSOR_MAX)) or int(digits) > CURSOR_MAX:
        raise ValueError(f"Last-Event-ID is past any cursor (at most {CURSOR_MAX})")
    return int(digits)
