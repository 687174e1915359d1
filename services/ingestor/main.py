"""Ingestor entrypoints: the HTTP service and the file command."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from itte import metrics
from itte.embedded import kafka_address
from itte.kafka import BlockingProducer, ensure_topics
from services.ingestor.files import read_long_csv
from services.ingestor.http import create_app
from services.ingestor.publisher import SERVICE, Published, RawPublisher
from services.ingestor.settings import IngestorSettings

log = logging.getLogger(__name__)


def build_publisher(settings: IngestorSettings) -> RawPublisher:
    bootstrap = kafka_address(settings)
    ensure_topics(bootstrap, settings.topic_partitions)
    producer = BlockingProducer(bootstrap, **{"message.timeout.ms": settings.delivery_timeout_ms})
    return RawPublisher(producer, settings.batch_records)


def serve(settings: IngestorSettings) -> None:
    app = create_app(build_publisher(settings), max_body_bytes=settings.max_body_bytes)
    uvicorn.run(
        app,
        host=settings.ingestor_host,
        port=settings.ingestor_port,
        log_level=settings.log_level.lower(),
    )


def ingest_files(settings: IngestorSettings, paths: list[Path]) -> list[Published]:
    publisher = build_publisher(settings)
    results = []
    for path in paths:
        result = publisher.publish(read_long_csv(path), source=f"file:{path.name}")
        metrics.RECORDS_IN.labels(SERVICE).inc(result.records)
        log.info(
            "%s: %d records published in %d messages", path, result.records, len(result.batch_ids)
        )
        results.append(result)
    return results
