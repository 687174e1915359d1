"""The cleaner moves on from a raw message (and so lets faust commit its
offset) only once the broker acknowledged every message it sent for it; a
refused send raises instead of being skipped."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.cleaner.app import deliver
from services.cleaner.handlers import Outgoing

OUT = Outgoing(clean=[("b/0", b"c0", 0), ("b/1", b"c1", 1)], dead=[("r7", b"d7")])


class QueuedTopic:
    """A topic whose sends are queued at once and acknowledged (or refused)
    when the test says so, as a producer's are."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes, int | None]] = []
        self.acks: list[asyncio.Future[Any]] = []

    async def send(
        self, *, key: bytes, value: bytes, partition: int | None = None
    ) -> asyncio.Future[Any]:
        self.sent.append((key, value, partition))
        self.acks.append(asyncio.get_running_loop().create_future())
        return self.acks[-1]


def test_returns_only_once_every_send_is_acknowledged() -> None:
    async def check() -> None:
        clean, dead = QueuedTopic(), QueuedTopic()
        delivering = asyncio.create_task(deliver(OUT, clean, dead))
        await asyncio.sleep(0.01)
        assert clean.sent == [(b"b/0", b"c0", 0), (b"b/1", b"c1", 1)]
        assert dead.sent == [(b"r7", b"d7", None)]
        for ack in clean.acks:
            ack.set_result(None)
        await asyncio.sleep(0.01)
        assert not delivering.done()  # the dead letter is not acknowledged yet
        dead.acks[0].set_result(None)
        await asyncio.wait_for(delivering, 1)

    asyncio.run(check())


def test_a_refused_send_raises() -> None:
    async def check() -> None:
        clean, dead = QueuedTopic(), QueuedTopic()
        delivering = asyncio.create_task(deliver(OUT, clean, dead))
        await asyncio.sleep(0.01)
        clean.acks[0].set_result(None)
        clean.acks[1].set_exception(RuntimeError("KafkaTimeoutError"))
        dead.acks[0].set_result(None)
        with pytest.raises(RuntimeError, match="KafkaTimeoutError"):
            await asyncio.wait_for(delivering, 1)

    asyncio.run(check())
