"""The change feed: every committed aggregate change, numbered (its cursor,
``change_seq``, migrations 0006 and 0009). Read by pages after a cursor
(``/indicateurs/changements``) or followed live as Server-Sent Events
(``/indicateurs/flux``), in the same cursor space.

A page is read in one snapshot with the highest number visible then: when
the page is not full, the next cursor is that number, so a client whose
filters match few changes does not read the others again. Numbers become
visible in order (a writer numbers under a lock held to commit), so
nothing below a cursor can appear later: no gap, no duplicate.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sse_starlette.event import ServerSentEvent

from services.api.queries import Filters, changes, last_change

# Server-Sent Events of one client: a heartbeat keeps proxies from closing
# an idle stream; a client that does not read for SEND_TIMEOUT is dropped
# (nothing is buffered for it beyond one event).
HEARTBEAT_SECONDS = 15
SEND_TIMEOUT_SECONDS = 10
STREAM_PAGE = 500


@dataclass(frozen=True)
class Page:
    rows: list[dict]  # API rows, each with its "curseur"
    cursor: int  # read from here next time


def read_changes(
    engine: Engine, filters: Filters, after: int, limit: int, to_row: Callable[..., dict]
) -> Page:
    with engine.connect() as conn:
        snapshot = conn.execution_options(isolation_level="REPEATABLE READ")
        with snapshot.begin():
            found = list(snapshot.execute(changes(filters, after, limit)))
            highest = snapshot.execute(last_change()).scalar_one()
    # An entry of the log whose row is gone reads empty: counted, not shown.
    rows = [{**to_row(row), "curseur": row.change_seq} for row in found if row.code is not None]
    if len(found) == limit:
        return Page(rows, found[-1].change_seq)
    return Page(rows, max(after, highest))


class Streams:
    """At most ``limit`` open streams in this worker (the others get 503)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def admit(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def done(self) -> None:
        self.open -= 1


async def follow(
    read: Callable[[int], Page],
    cursor: int,
    changed: Callable[[], int | None],
    gone: Callable[[], Awaitable[bool]],
    poll_seconds: float = 0.25,
    recheck_seconds: float = 5.0,
    blind_poll_seconds: float = 1.0,
) -> AsyncIterator[ServerSentEvent]:
    """Events after ``cursor``, as they are published. ``changed()`` is a
    number that moves when the data may have (the API's change listener),
    or None without one (cache off, listener reconnecting): then the
    database is asked every ``blind_poll_seconds``."""
    seen: int | None = -1
    checked = 0.0
    while not await gone():
        now = time.monotonic()
        signal = changed()
        if signal is None or signal != seen or now - checked > recheck_seconds:
            seen, checked = signal, now
            page = await asyncio.to_thread(read, cursor)
            for row in page.rows:
                yield ServerSentEvent(
                    data=json.dumps(row, ensure_ascii=False),
                    id=str(row["curseur"]),
                    event="changement",
                )
            if page.cursor > cursor and (not page.rows or page.rows[-1]["curseur"] < page.cursor):
                # Nothing of ours up to there: a reconnect may start after it.
                yield ServerSentEvent(data=page.cursor, id=str(page.cursor), event="curseur")
            cursor = page.cursor
            if len(page.rows) == STREAM_PAGE:
                continue  # more waiting: no pause
        await asyncio.sleep(poll_seconds if signal is not None else blind_poll_seconds)
