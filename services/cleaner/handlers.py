"""One raw message in, the messages to send out: clean batches, bounded in
records and bytes, each for the partition of its records' places, and one
dead letter per refused record; in the live lane (``indicators.raw``, JSON)
and in the bulk lane (``indicators.raw.bulk``, columns). No Kafka here."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pyarrow.compute as pc

from common import metrics
from common.referential import Referential
from schemas import bulk, clean, deadletter
from schemas.clean import encode_batches, place_hash
from schemas.deadletter import DeadLetter
from services.cleaner.columns import ColumnCleaner, clean_bulk
from services.cleaner.transform import MessageOrigin, Rules, clean_message

SERVICE = "cleaner"
log = logging.getLogger(__name__)
# Clean messages stay well under the producer's request size (common/faust_app.py).
CLEAN_MESSAGE_BYTES = 512 * 1024


@dataclass(frozen=True)
class Outgoing:
    # (batch id, CleanBatch JSON, partition) for indicators.clean
    clean: list[tuple[str, bytes, int]]
    dead: list[tuple[str, bytes]]  # (record id, DeadLetter JSON) for the dead letters


class Cleaner:
    def __init__(
        self,
        rules: Rules,
        *,
        batch_records: int,
        partitions: int,
        message_bytes: int = CLEAN_MESSAGE_BYTES,
    ) -> None:
        """``partitions``: of indicators.clean, as the broker has them."""
        self.rules = rules
        self.batch_records = batch_records
        self.partitions = partitions
        self.message_bytes = message_bytes
        self.columns = ColumnCleaner(rules)

    def use(self, ref: Referential) -> None:
        """Places the next records on ``ref`` (a later edition of the map):
        a message being cleaned keeps the rules it began with."""
        rules = replace(self.rules, ref=ref)
        self.rules, self.columns = rules, ColumnCleaner(rules)

    def handle(self, value: bytes, origin: MessageOrigin) -> Outgoing:
        """Never raises for a record's sake (``clean_message`` is total)."""
        with metrics.BATCH_SECONDS.labels(SERVICE).time():
            result = clean_message(value, origin, self.rules)
        # Records of one place go to one partition, whatever message brought
        # them: aggregators on different partitions then lock different places.
        by_partition: defaultdict[int, list[bytes]] = defaultdict(list)
        for record, encoded in zip(result.clean, result.encoded, strict=True):
            place = place_hash(record.sous_champ, record.annee, record.commune)
            by_partition[place % self.partitions].append(encoded)
        out = Outgoing(
            clean=[
                (batch_id, message, partition)
                for partition, records in sorted(by_partition.items())
                for batch_id, message in encode_batches(
                    f"{result.batch_id}/{partition}",
                    records,
                    max_records=self.batch_records,
                    max_bytes=self.message_bytes,
                )
            ],
            dead=[(d.record_id, deadletter.encode(d)) for d in result.dead],
        )
        counted(result.batch_id, len(result.clean), result.dead, clean.TOPIC)
        return out

    def handle_bulk(self, value: bytes, origin: MessageOrigin) -> Outgoing:
        """A bulk message cleaned a column at a time; the clean records cut,
        by the partition of their places, into messages of at most
        ``batch_records`` records. Never raises for a record's sake."""
        with metrics.BATCH_SECONDS.labels(SERVICE).time():
            result = clean_bulk(value, origin, self.columns, datetime.now(UTC))
            header = bulk.CleanHeader(batch_id=result.batch_id, producer=result.producer)
            table = result.table
            partition = pc.remainder(pc.cast(table.column("place"), "int64"), self.partitions)
            messages = []
            for p in sorted(set(partition.to_pylist())):
                rows = table.filter(pc.equal(partition, p))
                for part, start in enumerate(range(0, rows.num_rows, self.batch_records)):
                    chunk = rows.slice(start, self.batch_records)
                    key = f"{result.batch_id}/{p}/{part}"
                    messages.append((key, bulk.encode(chunk, header), p))
        out = Outgoing(
            clean=messages, dead=[(d.record_id, deadletter.encode(d)) for d in result.dead]
        )
        counted(result.batch_id, table.num_rows, result.dead, bulk.CLEAN_TOPIC)
        return out


def counted(batch_id: str, clean_records: int, dead: list[DeadLetter], topic: str) -> None:
    """The metrics and the debug log line of one message cleaned."""
    metrics.RECORDS_IN.labels(SERVICE).inc(clean_records + len(dead))
    metrics.RECORDS_OUT.labels(SERVICE, topic).inc(clean_records)
    for d in dead:
        metrics.DEAD_LETTERS.labels(SERVICE, d.reason).inc()
    log.debug(
        "batch %s: %d clean, %d dead-lettered",
        batch_id,
        clean_records,
        len(dead),
        extra={"batch_id": batch_id, "clean": clean_records, "dead_letters": len(dead)},
    )
