"""The bulk lane's loop (common/lanes.py) when its consumer's group went
on without it: a pause past the session timeout made the broker refuse the
commit as from an unknown member. Retrying that commit never succeeds and
never polls, which alone rejoins the group: the lane stood still for good
(found by the chaos run's paused aggregator). It must go back to polling."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import KafkaError, KafkaException

from common.lanes import BulkLane, moved_on, transient
from common.retry import Health
from common.servers import Servers


class Message:
    def __init__(self, offset: int) -> None:
        self.offset = offset

    def error(self) -> None:
        return None


class Consumer:
    """Delivers its messages, then nothing; its first commit is refused as
    from a member the group no longer has; the refused message comes again,
    as it does once the consumer has rejoined."""

    def __init__(self, refusal: int) -> None:
        self.queue = [Message(0), Message(1)]
        self.refusal = refusal
        self.committed: list[int] = []
        self.refused = 0

    def poll(self, timeout: float) -> Message | None:
        return self.queue.pop(0) if self.queue else None

    def commit(self, message: Message, asynchronous: bool) -> None:
        if not self.refused:
            self.refused += 1
            self.queue.insert(0, message)  # read again after the rejoin
            raise KafkaException(KafkaError(self.refusal))
        self.committed.append(message.offset)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("refusal", [KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION])
def test_a_commit_refused_by_a_group_gone_on_goes_back_to_polling(
    monkeypatch: pytest.MonkeyPatch, refusal: int
) -> None:
    consumer, handled = Consumer(refusal), []
    lane = BulkLane(
        Servers("broker:9092", "postgresql://db/itte"),
        group="g",
        topic="t",
        handle=lambda m: handled.append(m.offset),
        health=Health("test"),
    )
    monkeypatch.setattr(lane, "consumer", lambda: consumer)

    async def until_committed() -> None:
        task = asyncio.create_task(lane.run())
        for _ in range(200):
            if consumer.committed == [0, 1]:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(until_committed(), 10))
    assert handled == [0, 0, 1]  # the refused one applied again: idempotent
    assert consumer.committed == [0, 1]


def test_which_refusals_are_retried() -> None:
    gone = KafkaException(KafkaError(KafkaError.UNKNOWN_MEMBER_ID))
    away = KafkaException(KafkaError(KafkaError._TRANSPORT))
    assert moved_on(gone) and not transient(gone)
    assert transient(away) and not moved_on(away)
    assert not moved_on(ValueError("x"))
