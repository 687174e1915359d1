"""Kafka adapter of the ingestor: records → envelopes on ``indicators.raw``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from itte import metrics
from itte.kafka import MAX_MESSAGE_BYTES, BlockingProducer, MessageTooLarge
from schemas import raw
from services.ingestor.batching import batches, encode_batch

SERVICE = "ingestor"


@dataclass(frozen=True)
class Published:
    records: int
    batch_ids: list[str]


class RawPublisher:
    def __init__(self, producer: BlockingProducer, batch_records: int) -> None:
        self._producer = producer
        self._batch_records = batch_records

    def publish_whole(
        self, records: list[dict[str, Any]], *, source: str, producer: str | None
    ) -> Published:
        """One envelope, hence one Kafka message: the broker takes all or nothing."""
        [batch] = batches(records, source=source, producer=producer, size=max(len(records), 1))
        return Published(self._send([batch]), [batch.batch_id])

    @staticmethod
    def _encoded(pending: list[raw.RawBatch]) -> Iterator[tuple[str, bytes]]:
        for batch in pending:
            value = encode_batch(batch)
            if len(value) > MAX_MESSAGE_BYTES:
                raise MessageTooLarge(
                    f"{len(value)} bytes once in its envelope, more than {MAX_MESSAGE_BYTES}"
                )
            yield batch.batch_id, value

    def publish(
        self,
        records: Iterable[dict[str, Any]],
        *,
        source: str,
        producer: str | None = None,
        messages_per_flush: int = 200,
    ) -> Published:
        """Publish and wait for the broker's acknowledgement of every record.

        Large inputs are sent in rounds of ``messages_per_flush`` envelopes,
        so a file of any size streams through in constant memory.
        """
        count, ids, pending = 0, [], []
        for batch in batches(records, source=source, producer=producer, size=self._batch_records):
            pending.append(batch)
            if len(pending) >= messages_per_flush:
                count += self._send(pending)
                ids += [b.batch_id for b in pending]
                pending = []
        if pending:
            count += self._send(pending)
            ids += [b.batch_id for b in pending]
        return Published(count, ids)

    def _send(self, pending: list[raw.RawBatch]) -> int:
        with metrics.BATCH_SECONDS.labels(SERVICE).time():
            self._producer.send_all(raw.TOPIC, self._encoded(pending))
        sent = sum(len(b.records) for b in pending)
        metrics.RECORDS_OUT.labels(SERVICE, raw.TOPIC).inc(sent)
        return sent
