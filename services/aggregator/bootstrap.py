"""The one place where the aggregator's adapters are built, from settings read
once by the command (``itte aggregator``)."""

from __future__ import annotations

import faust

from common import catalogue, db, migrations, referential
from common.errors import Fatal
from common.faust_app import make_app
from common.kafka import BlockingProducer, ensure_topics_for
from common.lag import BULK_GROUPS
from common.lanes import BulkLane
from common.retry import Health
from common.servers import Servers
from schemas.catalogue import Catalogue
from services.aggregator import placement
from services.aggregator.app import attach
from services.aggregator.archive import PostgresLetterArchive
from services.aggregator.bulk import BulkStore, Indicator
from services.aggregator.handlers import SERVICE, Archive, BatchHandler, BulkBatchHandler, Relay
from services.aggregator.progress import PostgresProgress
from services.aggregator.publisher import KafkaDeadLetters, OutboxRelay
from services.aggregator.rules import AggregationRules
from services.aggregator.settings import AggregatorSettings
from services.aggregator.store import AggregateStore


def build(settings: AggregatorSettings, servers: Servers) -> faust.App:
    engine = db.make_engine(servers.database_url)
    migrations.require_current(engine)
    indicators = catalogue.load(settings.catalogue)
    db.load_catalogue(engine, indicators)  # what the API shows is what we aggregate by
    with engine.connect() as conn:  # the shipped edition, or one loaded since
        ref = db.current_referential(conn)
    engine.dispose()
    try:  # before any message: the stored values on this release's map
        placement.bring_onto(servers.database_url, ref)
    except Fatal as mismatch:
        raise SystemExit(str(mismatch)) from None
    ensure_topics_for(settings, servers)
    rules = AggregationRules.from_catalogue(indicators)
    store = AggregateStore(servers.database_url, ref, rules)
    producer = BlockingProducer(servers.kafka_bootstrap_servers, **servers.kafka_security)
    outbox = OutboxRelay(servers.database_url, producer, communes=settings.publish_communes)
    health = Health(SERVICE)
    app = make_app(
        SERVICE,
        servers,
        web_host=settings.aggregator_host,
        web_port=settings.aggregator_port,
        partitions=settings.topic_partitions,
        buffered_messages=2 * settings.batch_messages,  # the next batch, fetched ahead
        state=health,
    )
    batches = BatchHandler(
        store, KafkaDeadLetters(producer), PostgresProgress(servers.database_url)
    )
    archive = Archive(PostgresLetterArchive(servers.database_url))
    attach(
        app,
        batches,
        settings,
        relay=Relay(outbox),
        archive=archive,
        health=health,
        lane=bulk_lane(settings, servers, ref, indicators, rules, health),
    )
    return app


def bulk_lane(
    settings: AggregatorSettings,
    servers: Servers,
    ref: referential.Referential,
    indicators: Catalogue,
    rules: AggregationRules,
    health: Health,
) -> BulkLane:
    """The bulk lane: its own store and connections, the live lane's rules and map."""
    catalogue_of = {i.id: Indicator(i.agregation, i.unite) for i in indicators.indicateurs.values()}
    producer = BlockingProducer(servers.kafka_bootstrap_servers, **servers.kafka_security)
    store = AggregateStore(servers.database_url, ref, rules)
    batches = BatchHandler(
        store, KafkaDeadLetters(producer), PostgresProgress(servers.database_url)
    )
    bulk_store = BulkStore(servers.database_url, ref, catalogue_of)
    handler = BulkBatchHandler(bulk_store, batches, rules, bulk_store.placed)
    group, (topic,) = BULK_GROUPS["aggregator"]
    return BulkLane(
        servers,
        group=group,
        topic=topic,
        handle=lambda message: handler.handle(message.value() or b""),
        health=health,
        on_failure=handler.close,
    )
