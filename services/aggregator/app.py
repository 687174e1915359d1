"""Aggregator wiring: faust agent clean → Postgres → outbox relay → aggregates topic."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

import faust
import psycopg
from pydantic import ValidationError

from itte import catalogue, db, metrics, referential
from itte.embedded import servers_for
from itte.errors import is_transient, isolate, unexpected
from itte.faust_app import make_app, raw_topic, stop_on_unexpected
from itte.kafka import BlockingProducer, ensure_topics
from itte.retry import Health, retry_transient
from schemas import clean, deadletter
from schemas.clean import CleanBatch, CleanObservation, record_id
from schemas.deadletter import DeadLetter
from schemas.raw import describe
from services.aggregator.publisher import OutboxRelay
from services.aggregator.rules import AggregationRules
from services.aggregator.settings import AggregatorSettings
from services.aggregator.store import AggregateStore

SERVICE = "aggregator"
log = logging.getLogger(__name__)


def decode(values: list[bytes]) -> tuple[list[CleanObservation], list[DeadLetter]]:
    """Clean records, and a dead letter for each record (or message) that is not one."""
    records: list[CleanObservation] = []
    dead: list[DeadLetter] = []
    for value in values:
        try:
            records += CleanBatch.model_validate_json(value).records
        except ValidationError:  # the fast path failed: record by record
            good, bad = decode_one_by_one(value)
            records += good
            dead += bad
    return records, dead


def decode_one_by_one(value: bytes) -> tuple[list[CleanObservation], list[DeadLetter]]:
    message_id = f"aggregator:sha256:{hashlib.sha256(value).hexdigest()[:24]}"
    try:
        document = json.loads(value)
        items = document["records"]
        batch_id = str(document.get("batch_id", message_id))[:200]
        if not isinstance(items, list):
            raise TypeError("records is not a list")
    except Exception as exc:  # not JSON, nested too deep, not an envelope
        return [], [letter(message_id, "invalid_message", f"not a CleanBatch: {exc!r}"[:300])]
    records: list[CleanObservation] = []
    dead: list[DeadLetter] = []
    for index, item in enumerate(items):
        try:
            records.append(CleanObservation.model_validate(item))
        except Exception as exc:
            detail = describe(exc) if isinstance(exc, ValidationError) else type(exc).__name__
            dead.append(
                letter(own_id(item) or record_id(batch_id, index), "invalid_schema", detail)
            )
    return records, dead


def own_id(item: Any) -> str | None:
    """The record's own id, when it has a usable one."""
    found = item.get("record_id") if isinstance(item, dict) else None
    return found if isinstance(found, str) and 0 < len(found) <= 200 else None


def letter(
    record_id: str, reason: str, detail: str, record: CleanObservation | None = None
) -> DeadLetter:
    payload = (
        None
        if record is None
        else {k: deadletter.kept(v) for k, v in record.model_dump(exclude={"pii"}).items()}
    )
    return DeadLetter(
        record_id=record_id,
        stage=SERVICE,
        reason=reason,
        detail=detail,
        payload=payload,
        at=datetime.now(UTC),
    )


def unplaced_letter(record: CleanObservation) -> DeadLetter:
    detail = f"commune {record.commune} is not in the aggregator's referential"
    return letter(record.record_id, "unknown_code", detail, record)


def foreign_letter(record: CleanObservation, owner: str | None) -> DeadLetter:
    detail = (
        f"this observation belongs to producer {owner or '(unidentified)'}; "
        "only its owner can change it"
    )
    return letter(record.record_id, "other_producer", detail, record)


def refused_letter(record: CleanObservation, exc: Exception) -> DeadLetter:
    if isinstance(exc, psycopg.Error):
        detail = f"Postgres refused it: SQLSTATE {exc.sqlstate} ({type(exc).__name__})"
        return letter(record.record_id, "database_error", detail, record)
    detail = unexpected(exc, "aggregating a record")
    return letter(record.record_id, "internal_error", detail, record)


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
