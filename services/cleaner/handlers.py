"""One raw message in, the messages to send out: clean batches, bounded in
records and bytes, each for the partition of its records' places, and one
dead letter per refused record. No Kafka here."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from common import metrics
from schemas import clean, deadletter
from schemas.clean import encode_batches, place_hash
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
        metrics.RECORDS_IN.labels(SERVICE).inc(len(result.clean) + len(result.dead))
        metrics.RECORDS_OUT.labels(SERVICE, clean.TOPIC).inc(len(result.clean))
        for d in result.dead:
            metrics.DEAD_LETTERS.labels(SERVICE, d.reason).inc()
        log.debug(
            "batch %s: %d clean, %d dead-lettered",
            result.batch_id,
            len(result.clean),
            len(result.dead),
            extra={
                "batch_id": result.batch_id,
                "clean": len(result.clean),
                "dead_letters": len(result.dead),
            },
        )
        return out
