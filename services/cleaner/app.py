"""Entrypoints of the cleaner: each raw message to the handler, its output
to the clean topic and the dead letters. The live lane is a faust agent;
the bulk lane a consumer of its own (common/lanes.py)."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import faust
from confluent_kafka import Message

from common.faust_app import begin_with, raw_topic, stop_on_unexpected
from common.kafka import BlockingProducer
from common.lanes import BulkLane
from schemas import bulk, clean, deadletter, raw
from services.cleaner.handlers import SERVICE, Cleaner, Outgoing
from services.cleaner.transform import MessageOrigin


class Topic(Protocol):
    """What ``deliver`` needs of a faust topic: ``send`` queues the message
    and gives the future of the broker's acknowledgement."""

    async def send(
        self, *, key: bytes, value: bytes, partition: int | None = None
    ) -> asyncio.Future[Any]: ...


async def deliver(out: Outgoing, clean_out: Topic, dead_out: Topic) -> None:
    """Sends every message of ``out`` and returns once the broker has
    acknowledged them all; a refused send raises.

    faust's ``send`` returns once the message is queued. Before committing
    offsets faust waits for the queue to drain, but a send that failed there
    (the broker refused it, or its delivery timed out) goes unnoticed and the
    offset is committed all the same: the raw message's records would be
    lost. Waiting here, a failure raises before this event is acknowledged,
    the agent stops the process, and the raw message is read again."""
    queued = [
        await clean_out.send(key=key.encode(), value=value, partition=partition)
        for key, value, partition in out.clean
    ]
    queued += [await dead_out.send(key=key.encode(), value=value) for key, value in out.dead]
    await asyncio.gather(*queued)


def bulk_entrypoint(cleaner: Cleaner, producer: BlockingProducer) -> Any:
    """What the bulk lane does with one message: clean it, then send the
    clean messages and the dead letters and wait for the broker's
    acknowledgement (the lane commits the offset after)."""

    def handle(message: Message) -> None:
        timestamp = message.timestamp()[1]
        origin = MessageOrigin(
            message.topic() or bulk.RAW_TOPIC,
            message.partition() or 0,
            message.offset() or 0,
            timestamp,
        )
        out = cleaner.handle_bulk(message.value() or b"", origin)
        producer.send_to_partitions(bulk.CLEAN_TOPIC, out.clean)
        producer.send_all(deadletter.TOPIC, out.dead)

    return handle


def attach(app: faust.App, cleaner: Cleaner, lane: BulkLane | None = None) -> None:
    raw_in, clean_out, dead_out = (
        raw_topic(app, t) for t in (raw.TOPIC, clean.TOPIC, deadletter.TOPIC)
    )

    @app.agent(raw_in)
    async def clean_records(stream: Any) -> None:
        async with stop_on_unexpected(SERVICE):
            async for event in stream.events():
                m = event.message
                origin = MessageOrigin(m.topic, m.partition, m.offset, int(m.timestamp * 1000))
                # At least once: a replay re-sends, and duplicates are
                # harmless downstream (versions, record ids).
                await deliver(cleaner.handle(event.value, origin), clean_out, dead_out)

    if lane is not None:
        begin_with(app, lane.subscribe)

        @app.task
        async def clean_bulk() -> None:
            async with stop_on_unexpected(SERVICE):
                await lane.run()
