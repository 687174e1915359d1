"""How many pushes a worker reads and handles at once (issue #30).

A push holds its body, its records and its message in memory while it is
read, checked and published: up to 16 MiB of body and the most records of
the most fields allowed cost about 150 MB (docs/measurements.md). At most
``running`` pushes are read at a time; up to ``waiting`` more wait their
turn with their bodies still unread (the connection holds them back);
beyond, a push is answered 503 with Retry-After at once, before its body
is read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# The defaults of ITTE_PUSHES_AT_ONCE and ITTE_PUSHES_WAITING.
RUNNING, WAITING = 2, 16


class Admission:
    def __init__(self, running: int, waiting: int) -> None:
        if running < 1 or waiting < 0:
            raise ValueError("at least one push at a time, and no negative queue")
        self.running = running
        self.waiting = waiting
        self._slots = asyncio.Semaphore(running)
        self._queued = 0

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[bool]:
        """Yields True once this push may be read (hold it until answered),
        or False at once when too many are running and waiting already."""
        if self._slots.locked() and self._queued >= self.waiting:
            yield False
            return
        self._queued += 1
        try:
            await self._slots.acquire()
        finally:
            self._queued -= 1
        try:
            yield True
        finally:
            self._slots.release()
