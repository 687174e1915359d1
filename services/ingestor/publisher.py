"""Kafka adapter of the ingestor: records → envelopes on ``indicators.raw``
(the live lane), or text columns on ``indicators.raw.bulk`` (the bulk lane:
files, pulls, large requests; schemas/bulk.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import pyarrow as pa

from common import metrics
from common.kafka import MAX_MESSAGE_BYTES, BlockingProducer, MessageTooLarge
from schemas import bulk, raw
from services.ingestor.batching import batches, encode_batch
from services.ingestor.columns import representable, table_of
from services.ingestor.layouts import never
from services.ingestor.ports import Published

SERVICE = "ingestor"


def _unchanged(record: dict[str, Any]) -> dict[str, Any]:
    return record


def _same_table(table: pa.Table) -> pa.Table:
    return table


class RawPublisher:
    """``hide`` and ``hide_columns``: replace the personal fields of a record,
    or of a table's rows, by their keyed hashes (common.pii.PiiHasher.hide,
    columns.hidden), applied to every record before it leaves; ``is_personal``:
    which names those are (files never read such a column as a measure).

    ``bulk_records``: rows per message of the bulk lane; ``bulk_from``: a
    request of at least this many records goes to the bulk lane."""

    def __init__(
        self,
        producer: BlockingProducer,
        batch_records: int,
        hide: Callable[[dict[str, Any]], dict[str, Any]] = _unchanged,
        *,
        hide_columns: Callable[[pa.Table], pa.Table] = _same_table,
        is_personal: Callable[[str], bool] = never,
        bulk_records: int = 40_000,
        bulk_from: int = 1_000,
    ) -> None:
        self._producer = producer
        self._batch_records = batch_records
        self.hide = hide
        self.hide_columns = hide_columns
        self.is_personal = is_personal
        self._bulk_records = bulk_records
        self._bulk_from = bulk_from

    def publish_whole(
        self, records: list[dict[str, Any]], *, batch_id: str, source: str, producer: str | None
    ) -> Published:
        """One message, the broker takes all or nothing (:class:`MessageTooLarge`
        if it cannot be one message): an envelope on the live lane, or, for a
        large request, text columns on the bulk lane."""
        if len(records) >= self._bulk_from and all(map(representable, records)):
            table = self.hide_columns(table_of(records))
            value = bulk.encode(table, self._header(batch_id, source, producer))
            if len(value) > MAX_MESSAGE_BYTES:
                raise MessageTooLarge(
                    f"{len(value)} bytes as columns, more than {MAX_MESSAGE_BYTES}"
                )
            with metrics.BATCH_SECONDS.labels(SERVICE).time():
                self._producer.send_all(bulk.RAW_TOPIC, [(batch_id, value)])
            metrics.RECORDS_OUT.labels(SERVICE, bulk.RAW_TOPIC).inc(len(records))
            return Published(len(records), [batch_id])
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

    def publish_tables(
        self,
        tables: Iterable[pa.Table],
        *,
        source: str,
        producer: str | None = None,
        records_per_flush: int = 100_000,
    ) -> Published:
        """Records accepted at the edge, as text columns, on the bulk lane:
        messages of at most ``bulk_records`` rows, each its own batch; waits
        for the broker's acknowledgement every ``records_per_flush`` records,
        so that a file of any size streams through in constant memory."""
        count, ids = 0, list[str]()
        pending: list[tuple[str, bytes]] = []
        waiting = 0
        for table in tables:
            for start in range(0, table.num_rows, self._bulk_records):
                part = self.hide_columns(table.slice(start, self._bulk_records))
                batch_id = uuid.uuid4().hex
                pending.append((batch_id, self._bulk_message(part, batch_id, source, producer)))
                ids.append(batch_id)
                waiting += part.num_rows
                if waiting >= records_per_flush:
                    count += self._flush(pending, waiting)
                    pending, waiting = [], 0
        count += self._flush(pending, waiting)
        return Published(count, ids)

    def _header(self, batch_id: str, source: str, producer: str | None) -> raw.RawBatchHeader:
        return raw.RawBatchHeader(
            batch_id=batch_id, source=source, producer=producer, received_at=datetime.now(UTC)
        )

    def _bulk_message(
        self, table: pa.Table, batch_id: str, source: str, producer: str | None
    ) -> bytes:
        value = bulk.encode(table, self._header(batch_id, source, producer))
        if len(value) > MAX_MESSAGE_BYTES:
            raise MessageTooLarge(f"{len(value)} bytes as columns, more than {MAX_MESSAGE_BYTES}")
        return value

    def _flush(self, pending: list[tuple[str, bytes]], records: int) -> int:
        if not pending:
            return 0
        started = time.perf_counter()
        self._producer.send_all(bulk.RAW_TOPIC, pending)
        metrics.BATCH_SECONDS.labels(SERVICE).observe(time.perf_counter() - started)
        metrics.RECORDS_OUT.labels(SERVICE, bulk.RAW_TOPIC).inc(records)
        return records

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
