"""Answers streamed to a reader that must keep reading.

A CSV export reads its rows through a server-side cursor in one snapshot:
a reader that stops reading (or reads a few bytes a minute) would hold a
database connection, of a pool of ten, for as long as it likes (issue #30,
point 6). Each chunk must leave within ``send_timeout`` seconds; past it the
connection is dropped, so the reader sees a cut answer (never one that
looks complete), and the rows' cursor is closed at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

log = logging.getLogger(__name__)
SEND_TIMEOUT_SECONDS = 30.0


class SlowReader(OSError):
    """The reader took more than the send timeout to take one chunk (an
    OSError: Starlette treats it as the client gone)."""


class TimedStreamingResponse(StreamingResponse):
    """A streamed answer whose every chunk must be taken within
    ``send_timeout`` seconds."""

    def __init__(self, content: Iterator[bytes], *, send_timeout: float, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.content = content
        self.send_timeout = send_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SlowReader:
            # Returning with the answer unfinished makes the server close the
            # connection (one line in its log), without a traceback for what
            # is the reader's doing.
            return

    async def stream_response(self, send: Send) -> None:
        async def timed(message: Message) -> None:
            try:
                async with asyncio.timeout(self.send_timeout):
                    await send(message)
            except TimeoutError:
                log.warning("a reader took %s s for one chunk: answer cut", self.send_timeout)
                raise SlowReader("the reader stopped reading") from None

        try:
            await super().stream_response(timed)
        finally:
            close = getattr(self.content, "close", None)
            if close is not None:  # a generator: its cursor and connection go back now
                await run_in_threadpool(close)
