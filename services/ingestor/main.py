"""Ingestor entrypoints: the HTTP service and the file command."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from itte import metrics
from itte.embedded import database_address, kafka_address
from itte.kafka import BlockingProducer, ensure_topics
from services.ingestor.auth import Producers
from services.ingestor.file_ingest import FileSummary, ingest_file
from services.ingestor.files import Mapping
from services.ingestor.http import create_app
from services.ingestor.idempotency import IdempotencyStore
from services.ingestor.layouts import Format
from services.ingestor.publisher import SERVICE, RawPublisher
from services.ingestor.settings import IngestorSettings

log = logging.getLogger(__name__)


def build_publisher(settings: IngestorSettings) -> RawPublisher:
    bootstrap = kafka_address(settings)
    ensure_topics(bootstrap, settings.topic_partitions)
    producer = BlockingProducer(bootstrap, **{"message.timeout.ms": settings.delivery_timeout_ms})
    return RawPublisher(producer, settings.batch_records)


def serve(settings: IngestorSettings) -> None:
    producers = Producers.parse(settings.producer_tokens)
    if settings.environment != "local" and not producers.required:
        raise SystemExit("ITTE_PRODUCER_TOKENS must be set outside local runs")
    app = create_app(
        build_publisher(settings),
        producers=producers,
        idempotency=IdempotencyStore(
            database_address(settings), settings.idempotency_stale_seconds
        ),
        max_body_bytes=settings.max_body_bytes,
        max_records=settings.max_records_per_request,
    )
    uvicorn.run(
        app,
        host=settings.ingestor_host,
        port=settings.ingestor_port,
        log_level=settings.log_level.lower(),
    )


def ingest_files(
    settings: IngestorSettings,
    paths: list[Path],
    *,
    producer: str | None = None,
    fmt: Format | None = None,
    mapping: Mapping | None = None,
    show_progress: bool = False,
) -> list[FileSummary]:
    publisher = build_publisher(settings)
    summaries = []
    for path in paths:
        summary = ingest_file(
            publisher,
            path,
            fmt=fmt,
            mapping=mapping,
            producer=producer,
            show_progress=show_progress,
        )
        metrics.RECORDS_IN.labels(SERVICE).inc(summary.read)
        log.info("%s", summary)
        summaries.append(summary)
    return summaries
