"""Following the change feed live, as Server-Sent Events
(``/indicateurs/flux``): how many streams a worker keeps open, and the loop
that reads each new page of changes (``reads/changements.py``) when the
data may have changed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from sse_starlette.event import ServerSentEvent

from services.api.reads.changements import Page

# Server-Sent Events of one client: a heartbeat keeps proxies from closing
# an idle stream; a client that does not read for SEND_TIMEOUT is dropped
# (nothing is buffered for it beyond one event).
HEARTBEAT_SECONDS = 15
SEND_TIMEOUT_SECONDS = 10
STREAM_PAGE = 500


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
