"""The connections of the API's hottest read (``GET /indicateurs``, a page
of JSON): an asyncio pool of psycopg connections, read from the event loop
without a thread. Through SQLAlchemy's engine in the thread pool, the same
page cost about twice the CPU of the API's process under load
(docs/measurements.md, "The API's uncached reads").

The app's lifespan opens the pool in its event loop. An app used without
its lifespan (a test client without ``with``, each request in an event
loop of its own) gets a connection of its own for each read instead."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool

# An anonymous request holds a backend for this long at most (issue #30);
# Postgres cancels the statement, and the API answers 503 (app.py).
STATEMENT_TIMEOUT_MS = 10_000


def session_options(statement_timeout_ms: int = STATEMENT_TIMEOUT_MS) -> str:
    """libpq ``options`` of every API connection (the engine's and the pool's):
    read-only, and each statement bounded in time."""
    return f"-c default_transaction_read_only=on -c statement_timeout={statement_timeout_ms}"


# Autocommit, as the engine's connections (app.read_only_engine).
OPTIONS: dict[str, Any] = {"autocommit": True, "row_factory": namedtuple_row}
WAIT_SECONDS = 5.0  # for a free connection, before a 503
T = TypeVar("T")


class ReadPool:
    def __init__(
        self, libpq_url: str, size: int, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS
    ) -> None:
        self.libpq_url = libpq_url
        self.size = size
        self.options = {**OPTIONS, "options": session_options(statement_timeout_ms)}
        self._pool: AsyncConnectionPool[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def open(self) -> None:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self.libpq_url,
            min_size=self.size,
            max_size=self.size,
            kwargs=self.options,
            timeout=WAIT_SECONDS,
            open=False,
            name="itte-api-reads",
        )
        await pool.open(wait=False)  # the database may be away at start: readyz says so
        self._pool, self._loop = pool, asyncio.get_running_loop()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        self._pool = self._loop = None

    def _pooled(self) -> AsyncConnectionPool[Any] | None:
        """The pool, when it was opened in the event loop running now."""
        return self._pool if self._loop is asyncio.get_running_loop() else None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if (pool := self._pooled()) is not None:
            async with pool.connection() as conn:
                yield conn
            return
        async with await psycopg.AsyncConnection.connect(self.libpq_url, **self.options) as conn:
            yield conn

    async def read(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``work`` on a connection; once more when that one was broken (a
        database restart ends every idle connection of the pool, and the
        pool only learns it on use): the pool then checks all the others
        and replaces the broken ones. Reads only: doing one twice changes
        nothing."""
        used: psycopg.AsyncConnection[Any] | None = None
        try:
            async with self.connection() as used:
                return await work(used)
        except psycopg.OperationalError:
            if used is None or not used.broken:
                raise  # the database answered with an error, or is away
            if (pool := self._pooled()) is not None:
                await pool.check()
        async with self.connection() as conn:
            return await work(conn)
