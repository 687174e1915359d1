"""Cleaner wiring: faust agent raw → clean + dead letters."""

from __future__ import annotations

from typing import Any

import faust

from itte import catalogue, metrics, referential
from itte.embedded import kafka_address
from itte.faust_app import make_app, raw_topic, stop_on_unexpected
from itte.kafka import ensure_topics
from schemas import clean, deadletter, raw
from schemas.clean import encode_batches
from services.cleaner.settings import CleanerSettings
from services.cleaner.transform import MessageOrigin, Rules, clean_message

SERVICE = "cleaner"
# Clean messages stay well under the producer's request size (faust_app).
CLEAN_MESSAGE_BYTES = 512 * 1024


def build(settings: CleanerSettings) -> faust.App:
    bootstrap = kafka_address(settings)
    ensure_topics(bootstrap, settings.topic_partitions)
    rules = Rules(
        ref=referential.load(),
        hasher=settings.hasher(),
        catalogue=catalogue.load(settings.catalogue),
        accept_unknown=settings.unknown_indicators == "non_agregeable",
    )
    app = make_app(
        "itte-cleaner",
        bootstrap,
        web_host=settings.cleaner_host,
        web_port=settings.cleaner_port,
        partitions=settings.topic_partitions,
        # A raw message may be a whole HTTP request (up to 20,000 records).
        buffered_messages=16,
    )
    raw_in, clean_out, dead_out = (
        raw_topic(app, t) for t in (raw.TOPIC, clean.TOPIC, deadletter.TOPIC)
    )

    @app.agent(raw_in)
    async def clean_records(stream: Any) -> None:
        async with stop_on_unexpected(SERVICE):
            async for event in stream.events():
                await forward(event)

    async def forward(event: Any) -> None:
        message = event.message
        origin = MessageOrigin(
            message.topic, message.partition, message.offset, int(message.timestamp * 1000)
        )
        with metrics.BATCH_SECONDS.labels(SERVICE).time():
            result = clean_message(event.value, origin, rules)
        # Sends are attached to this event: faust commits its offset only
        # after they are acknowledged (at least once; duplicates are harmless).
        for batch_id, value in encode_batches(
            result.batch_id,
            result.encoded,
            max_records=settings.clean_batch_records,
            max_bytes=CLEAN_MESSAGE_BYTES,
        ):
            await clean_out.send(key=batch_id.encode(), value=value)
        for dead in result.dead:
            await dead_out.send(key=dead.record_id.encode(), value=deadletter.encode(dead))
            metrics.DEAD_LETTERS.labels(SERVICE, dead.reason).inc()
        metrics.RECORDS_IN.labels(SERVICE).inc(len(result.clean) + len(result.dead))
        metrics.RECORDS_OUT.labels(SERVICE, clean.TOPIC).inc(len(result.clean))

    return app
