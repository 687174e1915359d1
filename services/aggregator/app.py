"""Aggregator wiring: faust agent clean → Postgres → outbox relay → aggregates topic."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import faust

from itte import catalogue, db, metrics, referential
from itte.embedded import servers_for
from itte.errors import is_transient, isolate
from itte.faust_app import make_app, raw_topic, stop_on_unexpected
from itte.kafka import BlockingProducer, ensure_topics
from itte.retry import Health, retry_transient
from schemas import clean, deadletter
from services.aggregator.letters import decode, foreign_letter, refused_letter, unplaced_letter
from services.aggregator.publisher import OutboxRelay
from services.aggregator.rules import AggregationRules
from services.aggregator.settings import AggregatorSettings
from services.aggregator.store import AggregateStore

SERVICE = "aggregator"
log = logging.getLogger(__name__)


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
        """One transaction per batch (more only to isolate a record Postgres
        refuses); runs in a thread so heartbeats go on."""
        with metrics.BATCH_SECONDS.labels(SERVICE).time():
            records, dead = decode(values)
            results, refused = isolate(store.apply, records)
            dead += [refused_letter(record, exc) for record, exc in refused]
            dead += [unplaced_letter(r) for result in results for r in result.unplaced]
            dead += [foreign_letter(*f) for result in results for f in result.foreign]
            if dead:
                producer.send_all(
                    deadletter.TOPIC, ((d.record_id, deadletter.encode(d)) for d in dead)
                )
            published = relay.publish_pending()
        metrics.RECORDS_IN.labels(SERVICE).inc(len(records))
        metrics.STALE.labels(SERVICE).inc(sum(result.stale for result in results))
        metrics.AGGREGATES_PUBLISHED.labels(SERVICE).inc(published)
        for d in dead:
            metrics.DEAD_LETTERS.labels(SERVICE, d.reason).inc()

    @app.agent(raw_topic(app, clean.TOPIC))
    async def aggregate(stream: Any) -> None:
        # Offsets are acknowledged after the batch is yielded back, i.e. after
        # its transaction committed: a crash replays, and replays are no-ops.
        # A fatal error (itte/errors.py) stops the process before that.
        async with stop_on_unexpected(SERVICE):
            async for values in stream.take(settings.batch_messages, within=settings.batch_seconds):
                await retry_transient(
                    functools.partial(asyncio.to_thread, process, values),
                    transient=is_transient,
                    log=log,
                    on_failure=store.close,
                    health=health,
                )

    @app.timer(interval=settings.publish_interval)
    async def relay_outbox() -> None:
        try:
            published = await asyncio.to_thread(relay.publish_pending)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("outbox relay: %s; next tick retries", exc)
            return
        metrics.AGGREGATES_PUBLISHED.labels(SERVICE).inc(published)

    return app
