"""Aggregator wiring: faust agent clean → Postgres → outbox relay → aggregates topic."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

import faust
import psycopg
from pydantic import ValidationError

from itte import catalogue, db, metrics, referential
from itte.embedded import servers_for
from itte.faust_app import make_app, raw_topic
from itte.kafka import BlockingProducer, DeliveryError, ensure_topics
from itte.retry import Health, retry_transient
from schemas import clean, deadletter
from schemas.clean import CleanBatch, CleanObservation
from schemas.deadletter import DeadLetter
from services.aggregator.publisher import OutboxRelay
from services.aggregator.rules import AggregationRules
from services.aggregator.settings import AggregatorSettings
from services.aggregator.store import AggregateStore

SERVICE = "aggregator"
log = logging.getLogger(__name__)


def decode(values: list[bytes]) -> tuple[list[CleanObservation], list[DeadLetter]]:
    records: list[CleanObservation] = []
    dead: list[DeadLetter] = []
    for value in values:
        try:
            records += CleanBatch.model_validate_json(value).records
        except ValidationError as exc:
            dead.append(
                DeadLetter(
                    record_id=f"aggregator:sha256:{hashlib.sha256(value).hexdigest()[:24]}",
                    stage=SERVICE,
                    reason="invalid_message",
                    detail=f"not a CleanBatch: {exc.error_count()} errors",
                    payload=None,
                    at=datetime.now(UTC),
                )
            )
    return records, dead


def unplaced_letter(record: CleanObservation) -> DeadLetter:
    return DeadLetter(
        record_id=record.record_id,
        stage=SERVICE,
        reason="unknown_code",
        detail=f"commune {record.commune} is not in the aggregator's referential",
        payload=record.model_dump(mode="json", exclude={"pii"}),
        at=datetime.now(UTC),
    )


def build(settings: AggregatorSettings) -> faust.App:
    servers = servers_for(settings)
    ensure_topics(servers.kafka_bootstrap_servers, settings.topic_partitions)
    indicators = catalogue.load(settings.catalogue)
    db.ensure_schema(db.make_engine(servers.database_url), indicators)
    store = AggregateStore(
        servers.database_url, referential.load(), AggregationRules.from_catalogue(indicators)
    )
    producer = BlockingProducer(servers.kafka_bootstrap_servers)
    relay = OutboxRelay(servers.database_url, producer)
    health = Health()
    app = make_app(
        "itte-aggregator",
        servers.kafka_bootstrap_servers,
        web_host=settings.aggregator_host,
        web_port=settings.aggregator_port,
        partitions=settings.topic_partitions,
        buffered_messages=2 * settings.batch_messages,  # the next batch, fetched ahead
        state=health,
    )

    def process(values: list[bytes]) -> None:
        """One transaction per batch; runs in a thread so heartbeats go on."""
        with metrics.BATCH_SECONDS.labels(SERVICE).time():
            records, dead = decode(values)
            result = store.apply(records)
            dead += [unplaced_letter(r) for r in result.unplaced]
            if dead:
                producer.send_all(
                    deadletter.TOPIC, ((d.record_id, d.model_dump_json().encode()) for d in dead)
                )
            published = relay.publish_pending()
        metrics.RECORDS_IN.labels(SERVICE).inc(len(records))
        metrics.STALE.labels(SERVICE).inc(result.stale)
        metrics.AGGREGATES_PUBLISHED.labels(SERVICE).inc(published)
        for d in dead:
            metrics.DEAD_LETTERS.labels(SERVICE, d.reason).inc()

    @app.agent(raw_topic(app, clean.TOPIC))
    async def aggregate(stream: Any) -> None:
        # Offsets are acknowledged after the batch is yielded back, i.e. after
        # its transaction committed: a crash replays, and replays are no-ops.
        async for values in stream.take(settings.batch_messages, within=settings.batch_seconds):
            await retry_transient(
                functools.partial(asyncio.to_thread, process, values),
                transient=(psycopg.OperationalError, DeliveryError),
                log=log,
                on_failure=store.close,
                health=health,
            )

    @app.timer(interval=settings.publish_interval)
    async def relay_outbox() -> None:
        try:
            published = await asyncio.to_thread(relay.publish_pending)
        except (psycopg.OperationalError, DeliveryError) as exc:
            log.warning("outbox relay: %s; next tick retries", exc)
            return
        metrics.AGGREGATES_PUBLISHED.labels(SERVICE).inc(published)

    return app
