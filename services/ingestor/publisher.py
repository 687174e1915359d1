"""Kafka adapter of the ingestor: records → envelopes on ``indicators.raw``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from common import metrics
from common.kafka import MAX_MESSAGE_BYTES, BlockingProducer, MessageTooLarge
from schemas import raw
from services.ingestor.batching import batches, encode_batch
from services.ingestor.ports import Published

SERVICE = "ingestor"


def _unchanged(record: dict[str, Any]) -> dict[str, Any]:
    return record


class RawPublisher:
    """``hide``: replaces the personal fields of a record by their keyed hashes
    (common.pii.PiiHasher.hide), applied to every record before it leaves."""

    def __init__(
        self,
        producer: BlockingProducer,
        batch_records: int,
        hide: Callable[[dict[str, Any]], dict[str, Any]] = _unchanged,
    ) -> None:
        self._producer = producer
        self._batch_records = batch_records
        self.hide = hide

    def publish_whole(
        self, records: list[dict[str, Any]], *, batch_id: str, source: str, producer: str | None
    ) -> Published:
        """One envelope, hence one Kafka message: the broker takes all or nothing
        (:class:`MessageTooLarge` if it cannot be one message)."""
        batch = raw.RawBatch(
            batch_id=batch_id,
            source=source,
            producer=producer,
            received_at=datetime.now(UTC),
            records=[self.hide(r) for r in records],
        )
        return self._send(encoded(batch, split=False))

    def reachable(self) -> str | None:
        return self._producer.reachable()

    def publish(
        self,
        records: Iterable[dict[str, Any]],
        *,
        source: str,
        producer: str | None = None,
        records_per_flush: int = 100_000,
    ) -> Published:
        """Publish and wait for the broker's acknowledgement of every record.

        Each envelope is handed to the producer as soon as it is cut, while
        the next records are read: the cleaner starts on the first envelope
        of a file instead of waiting for a round of them to be read. The
        acknowledgements are awaited every ``records_per_flush`` records, so
        a file of any size streams through in constant memory. An envelope
        too large for one message (very long records) is cut in halves.
        """
        messages_per_flush = max(1, records_per_flush // self._batch_records)
        envelopes = batches(
            map(self.hide, records), source=source, producer=producer, size=self._batch_records
        )
        count, ids = 0, list[str]()
        while True:
            sent: list[tuple[str, int]] = []  # (batch id, records) of this round
            started = time.perf_counter()
            self._producer.send_all(
                raw.TOPIC, messages_of(islice(envelopes, messages_per_flush), sent)
            )
            if not sent:
                return Published(count, ids)
            metrics.BATCH_SECONDS.labels(SERVICE).observe(time.perf_counter() - started)
            records_sent = sum(n for _, n in sent)
            metrics.RECORDS_OUT.labels(SERVICE, raw.TOPIC).inc(records_sent)
            count, ids = count + records_sent, ids + [batch_id for batch_id, _ in sent]

    def _send(self, pending: list[tuple[raw.RawBatch, bytes]]) -> Published:
        with metrics.BATCH_SECONDS.labels(SERVICE).time():
            self._producer.send_all(raw.TOPIC, ((b.batch_id, value) for b, value in pending))
        sent = sum(len(b.records) for b, _ in pending)
        metrics.RECORDS_OUT.labels(SERVICE, raw.TOPIC).inc(sent)
        return Published(sent, [b.batch_id for b, _ in pending])


def messages_of(
    envelopes: Iterable[raw.RawBatch], sent: list[tuple[str, int]]
) -> Iterator[tuple[str, bytes]]:
    """(key, value) of each envelope, cut when too large, as it is read;
    ``sent`` gets the (batch id, records) of each message."""
    for envelope in envelopes:
        for part, value in encoded(envelope, split=True):
            sent.append((part.batch_id, len(part.records)))
            yield part.batch_id, value


def encoded(batch: raw.RawBatch, *, split: bool) -> list[tuple[raw.RawBatch, bytes]]:
    """The envelope and its JSON, within MAX_MESSAGE_BYTES: cut in halves if
    ``split`` (each half its own batch id), else :class:`MessageTooLarge`."""
    value = encode_batch(batch)
    if len(value) <= MAX_MESSAGE_BYTES:
        return [(batch, value)]
    if not split or len(batch.records) == 1:
        raise MessageTooLarge(
            f"{len(value)} bytes once in its envelope, more than {MAX_MESSAGE_BYTES}"
        )
    middle = len(batch.records) // 2
    halves = (batch.records[:middle], batch.records[middle:])
    return [
        part
        for suffix, records in zip("ab", halves, strict=True)
        for part in encoded(
            batch.model_copy(update={"batch_id": batch.batch_id + suffix, "records": records}),
            split=True,
        )
    ]
