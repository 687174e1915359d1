"""The one place where the ingestor's adapters are built, from settings read
once by the command (``itte ingestor``, ``itte ingest``, ``itte pull``)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from common import logs
from common.edition_feed import EditionFeed
from common.kafka import BlockingProducer, ensure_topics_for
from common.pii import hasher_for
from common.referential import Referential, load
from common.servers import Servers
from services.ingestor.admission import Admission
from services.ingestor.auth import Producers, ProducersFile
from services.ingestor.columns import hidden
from services.ingestor.handlers import BlockHandler, PushHandler
from services.ingestor.http import create_app
from services.ingestor.idempotency import IdempotencyStore
from services.ingestor.ledger import PostgresBatchLedger
from services.ingestor.ports import ProducerDirectory
from services.ingestor.publisher import RawPublisher
from services.ingestor.ratelimit import MovingWindow
from services.ingestor.settings import IngestorSettings


def publisher(settings: IngestorSettings, servers: Servers) -> RawPublisher:
    ensure_topics_for(settings, servers)
    producer = BlockingProducer(
        servers.kafka_bootstrap_servers,
        **servers.kafka_security,
        **{"message.timeout.ms": settings.delivery_timeout_ms},
    )
    hasher = hasher_for(settings)
    return RawPublisher(
        producer,
        settings.batch_records,
        hasher.hide,
        hide_columns=functools.partial(hidden, hasher=hasher),
        is_personal=hasher.is_personal,
        bulk_records=settings.bulk_records,
        bulk_from=settings.bulk_from_records,
    )


def block_handler(settings: IngestorSettings, servers: Servers) -> BlockHandler:
    """What ``itte ingest`` and ``itte pull`` hand their blocks of records to."""
    return BlockHandler(publisher(settings, servers))


def producer_directory(
    settings: IngestorSettings, edition: Callable[[], Referential] = load
) -> ProducerDirectory:
    """Who may push: the file, read again when it changes, else the variable;
    their territories on the map ``edition`` gives."""
    try:
        if settings.producers_file is not None:
            if settings.producer_tokens:
                raise ValueError("set ITTE_PRODUCERS_FILE or ITTE_PRODUCER_TOKENS, not both")
            return ProducersFile(settings.producers_file, edition=edition)
        return Producers.parse(settings.producer_tokens, edition)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"producers: {exc}") from None


def http_app(settings: IngestorSettings, servers: Servers) -> FastAPI:
    # The newest edition of the map, for producers' territories: the
    # shipped one until the topic is read, below (territories named in the
    # producers' table are checked on it at start).
    editions = EditionFeed(servers, load())
    producers = producer_directory(settings, lambda: editions.current)
    if not settings.local and not producers.current().required:
        raise SystemExit(
            settings.missing(
                "ITTE_PRODUCERS_FILE or ITTE_PRODUCER_TOKENS is not set: pushes would be open"
            )
        )
    raw = publisher(settings, servers)  # the topics made first: the editions' too
    editions.latest()
    editions.follow()
    return create_app(
        PushHandler(
            raw,
            IdempotencyStore(
                servers.database_url,
                settings.idempotency_stale_seconds,
                settings.idempotency_ttl_seconds,
            ),
            ledger=PostgresBatchLedger(servers.database_url, settings.batch_status_ttl_seconds),
            producers=producers,
            max_body_bytes=settings.max_body_bytes,
            max_records=settings.max_records_per_request,
            rate_limit=(
                MovingWindow(settings.producer_rate_limit) if settings.producer_rate_limit else None
            ),
        ),
        Admission(settings.pushes_at_once, settings.pushes_waiting),
        on_shutdown=editions.stop,  # its consumer closed
    )


def serve(settings: IngestorSettings, servers: Servers) -> None:
    uvicorn.run(
        http_app(settings, servers),
        host=settings.ingestor_host,
        port=settings.ingestor_port,
        log_level=settings.log_level.lower(),
        log_config=logs.config(settings.log_level, settings.log_format, "ingestor"),
    )
