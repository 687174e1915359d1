"""Following the change feed live, as Server-Sent Events
(``/indicateurs/flux``): how many streams a worker keeps open, and the loop
that reads each new page of changes (``reads/changements.py``) when the
data may have changed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from sse_starlette.event import ServerSentEvent

from services.api.reads.changements import Page

# Server-Sent Events of one client: a heartbeat keeps proxies from closing
# an idle stream; a client that does not read for SEND_TIMEOUT is dropped
# (nothing is buffered for it beyond one event).
HEARTBEAT_SECONDS = 15
SEND_TIMEOUT_SECONDS = 10
STREAM_PAGE = 500


@dataclass(eq=False)
class Slot:
    """One open stream: whose, and when it last carried an event."""

    client: str
    last_event: float
    dropped: bool = False  # its place was given to another client: it ends


class Refusal(Enum):
    FULL = "too many open streams, retry later"
    CLIENT_FULL = "too many open streams from this address, close one first"


class Streams:
    """At most ``limit`` open streams in this worker, shared between client
    addresses (issue #30, point 6): at most ``per_client`` each; and when
    every place is taken, a client holding fewer streams than the busiest
    one takes the place of that one's stream idle the longest (it ends; its
    EventSource reconnects, to find the places shared). Only the event
    loop's thread calls it."""

    def __init__(
        self,
        limit: int,
        per_client: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.per_client = per_client or limit
        self.clock = clock
        self.slots: dict[str, list[Slot]] = {}

    @property
    def open(self) -> int:
        return sum(len(held) for held in self.slots.values())

    def admit(self, client: str) -> Slot | Refusal:
        held = self.slots.get(client, [])
        if len(held) >= self.per_client:
            return Refusal.CLIENT_FULL
        if self.open >= self.limit and not self._make_room(len(held)):
            return Refusal.FULL
        slot = Slot(client, self.clock())
        self.slots.setdefault(client, []).append(slot)
        return slot

    def _make_room(self, holding: int) -> bool:
        busiest = max(self.slots.values(), key=len, default=[])
        if len(busiest) <= holding + 1:  # taking one would not make it fairer
            return False
        idlest = min(busiest, key=lambda s: s.last_event)
        idlest.dropped = True
        self.done(idlest)
        return True

    def sent(self, slot: Slot) -> None:
        slot.last_event = self.clock()

    def done(self, slot: Slot) -> None:
        held = self.slots.get(slot.client, [])
        if slot in held:
            held.remove(slot)
        if not held:
            self.slots.pop(slot.client, None)


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
