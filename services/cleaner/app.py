"""Faust entrypoint of the cleaner: each raw message to the handler, its
output to ``indicators.clean`` and the dead letters."""

from __future__ import annotations

from typing import Any

import faust

from common.faust_app import raw_topic, stop_on_unexpected
from schemas import clean, deadletter, raw
from services.cleaner.handlers import SERVICE, Cleaner
from services.cleaner.transform import MessageOrigin


def attach(app: faust.App, cleaner: Cleaner) -> None:
    raw_in, clean_out, dead_out = (
        raw_topic(app, t) for t in (raw.TOPIC, clean.TOPIC, deadletter.TOPIC)
    )

    @app.agent(raw_in)
    async def clean_records(stream: Any) -> None:
        async with stop_on_unexpected(SERVICE):
            async for event in stream.events():
                m = event.message
                origin = MessageOrigin(m.topic, m.partition, m.offset, int(m.timestamp * 1000))
                out = cleaner.handle(event.value, origin)
                # Sends are attached to this event: faust commits its offset
                # only after they are acknowledged (at least once; duplicates
                # are harmless downstream).
                for key, value, partition in out.clean:
                    await clean_out.send(key=key.encode(), value=value, partition=partition)
                for key, value in out.dead:
                    await dead_out.send(key=key.encode(), value=value)
