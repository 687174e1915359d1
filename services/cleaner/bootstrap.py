"""The one place where the cleaner is built, from settings read once by the
command (``itte cleaner``)."""

from __future__ import annotations

import faust

from common import catalogue, referential
from common.edition_feed import EditionFeed
from common.faust_app import make_app
from common.kafka import BlockingProducer, ensure_topics_for
from common.lag import BULK_GROUPS
from common.lanes import BulkLane
from common.pii import hasher_for
from common.retry import Health
from common.servers import Servers
from schemas import bulk, clean
from services.cleaner.app import attach, bulk_entrypoint
from services.cleaner.handlers import Cleaner
from services.cleaner.settings import CleanerSettings
from services.cleaner.transform import Rules


def build(settings: CleanerSettings, servers: Servers) -> faust.App:
    layout = ensure_topics_for(settings, servers)
    editions = EditionFeed(servers, referential.load())
    rules = Rules(
        ref=editions.latest(),
        hasher=hasher_for(settings),
        catalogue=catalogue.load(settings.catalogue),
        accept_unknown=settings.unknown_indicators == "non_agregeable",
        clock_skew_micros=int(settings.clock_skew_seconds * 1_000_000),
    )
    health = Health("cleaner")
    app = make_app(
        "cleaner",
        servers,
        web_host=settings.cleaner_host,
        web_port=settings.cleaner_port,
        partitions=settings.topic_partitions,
        # A raw message may be a whole HTTP request (up to 20,000 records).
        buffered_messages=16,
        state=health,
    )
    cleaner = Cleaner(
        rules, batch_records=settings.clean_batch_records, partitions=layout[clean.TOPIC]
    )
    bulk_cleaner = Cleaner(
        rules, batch_records=settings.clean_bulk_records, partitions=layout[bulk.CLEAN_TOPIC]
    )
    producer = BlockingProducer(servers.kafka_bootstrap_servers, **servers.kafka_security)
    group, (topic,) = BULK_GROUPS["cleaner"]
    lane = BulkLane(
        servers,
        group=group,
        topic=topic,
        handle=bulk_entrypoint(bulk_cleaner, producer),
        health=health,
    )
    attach(app, cleaner, lane)

    def use(ref: referential.Referential) -> None:
        cleaner.use(ref)
        bulk_cleaner.use(ref)

    editions.follow(use)
    return app
