"""In-memory implementations of the services' ports (services/*/ports.py),
for unit tests: the handlers run against them with no broker and no database."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any

import pyarrow as pa

from common.pii import PiiHasher
from common.referential import Referential, ancestors
from schemas import bulk, deadletter
from schemas.clean import CleanObservation
from schemas.deadletter import DeadLetter
from services.aggregator.changes import Change
from services.aggregator.ports import (
    Aggregates,
    ApplyResult,
    DeadLetters,
    LetterArchive,
    Outbox,
    Progress,
)
from services.aggregator.rules import AggregationRules
from services.aggregator.transform import (
    AggKey,
    CommuneState,
    ObsKey,
    Stored,
    commune_keys_needed,
    plan,
)
from services.ingestor.columns import hidden
from services.ingestor.layouts import never
from services.ingestor.ports import (
    BatchLedger,
    BatchProgress,
    BlockPublisher,
    IdempotencyKeys,
    Letter,
    OpenedBatch,
    Previous,
    Published,
    RateLimit,
    WholePublisher,
    body_digest,
)
from tests import oracle

Row = oracle.Row
EMPTY: Row = (Decimal(0), 0, Decimal(0), Decimal(0), 0, 0, 0)


class MemoryAggregates:
    """Implements services.aggregator.ports.Aggregates over dictionaries, with
    the same pure plan() as AggregateStore. ``refuse`` names the error a
    record would meet in Postgres (None: none); like a transaction, a batch
    holding such a record changes nothing."""

    def __init__(
        self,
        ancestors: Mapping[str, list[tuple[str, str]]],
        rules: AggregationRules,
        refuse: Callable[[CleanObservation], Exception | None] = lambda _: None,
    ) -> None:
        self.places = ancestors
        self.ancestors = ancestors.__getitem__
        self.rules = rules
        self.refuse = refuse
        self.closed = 0
        self.observations: dict[ObsKey, CleanObservation] = {}
        self.aggregates: dict[AggKey, Row] = {}
        self.stale = 0
        self.foreign = 0
        self.received: list[list[CleanObservation]] = []
        self.numbered = 0  # the change feed's last number

    def apply(self, records: list[CleanObservation]) -> ApplyResult:
        for record in records:
            if (error := self.refuse(record)) is not None:
                raise error
        unplaced = [r for r in records if r.commune not in self.places]
        records = [r for r in records if r.commune in self.places]
        with localcontext() as exact:  # the store's NUMERIC columns never round
            exact.prec = 200
            written, stale, foreign, changed = self._apply(records)
        return ApplyResult(len(written), stale, 0, unplaced, foreign, self._numbered(changed))

    def _numbered(self, keys: Iterable[AggKey]) -> list[Change]:
        """Each changed row with the next number, as the store returns them."""
        changes = []
        for key in sorted(keys):
            self.numbered += 1
            text = "|".join(map(str, key))
            changes.append(Change(self.numbered, key[3], text, json.dumps(text).encode()))
        return changes

    def use(self, edition: Referential) -> None:
        chains = {code: list(chain) for code, chain in ancestors(edition).items()}
        self.places = chains
        self.ancestors = chains.__getitem__

    def close(self) -> None:
        self.closed += 1

    def _apply(
        self, records: list[CleanObservation]
    ) -> tuple[list[CleanObservation], int, list[CleanObservation], set[AggKey]]:
        self.received.append(list(records))
        stored = {
            k: Stored(o.valeur, o.version_explicite, o.version, o.recu, o.record_id, o.producteur)
            for k, o in self.observations.items()
        }
        needed = commune_keys_needed(records, self.rules)
        communes = {
            k: CommuneState(row[0], row[1])
            for k in needed
            if (row := self.aggregates.get((*k[:3], "commune", k[3]))) is not None
        }
        result = plan(records, stored, communes, self.ancestors, self.rules)
        self.stale += result.stale
        self.foreign += len(result.foreign)
        for record in result.writes:
            self.observations[record.key] = record
        before = {key: self.aggregates.get(key, EMPTY)[:2] for key in result.extremes}
        for key, d in result.deltas.items():
            v, n, num, den, replis, years, squares = self.aggregates.get(key, EMPTY)
            self.aggregates[key] = (
                v + d.valeur,
                n + d.nb_valeurs,
                num + d.numerateur,
                den + d.denominateur,
                replis + d.replis,
                years + d.repli_annees,
                squares + d.repli_carres,
            )
        for key, change in result.extremes.items():
            # As the store: settled from the value before the batch when it can be.
            valeur, nb_valeurs = before[key]
            settled = change.settle(valeur, nb_valeurs > 0)
            if settled is not None:
                self.aggregates[key] = (settled, *self.aggregates[key][1:])
                continue
            members = [
                row[0]
                for k, row in self.aggregates.items()
                if k[:3] == key[:3]
                and k[3] == "commune"
                and row[1] > 0
                and (key[3], key[4]) in self.ancestors(k[4])
            ]
            extreme = (min if change.kind == "min" else max)(members, default=Decimal(0))
            self.aggregates[key] = (extreme, *self.aggregates[key][1:])
        return result.writes, result.stale, result.foreign, {*result.deltas, *result.extremes}

    def recompute(self) -> dict[AggKey, Row]:
        """The truth from every record received (tests/oracle.py), not from
        what plan() chose to write."""
        kept = oracle.winners(self.received)
        return oracle.aggregates(kept.values(), self.ancestors, self.rules)

    def nonempty(self, table: dict[AggKey, Row]) -> dict[AggKey, Row]:
        return {k: v for k, v in table.items() if v != EMPTY}


class MemoryPublisher:
    """Implements services.ingestor.ports.WholePublisher and BlockPublisher:
    keeps what it is given (``tables``: the bulk lane's rows, as records)."""

    def __init__(
        self, fail_with: BaseException | None = None, hasher: PiiHasher | None = None
    ) -> None:
        """``hasher``: personal fields hidden as the ingestor's bootstrap does."""
        self.published: list[tuple[list[dict[str, Any]], str | None]] = []
        self.tables: list[dict[str, Any]] = []
        self.fail_with = fail_with
        self.hide: Callable[[dict[str, Any]], dict[str, Any]] = hasher.hide if hasher else dict
        self.is_personal: Callable[[str], bool] = hasher.is_personal if hasher else never
        self.hasher = hasher

    def publish_tables(
        self, tables: Iterable[pa.Table], *, source: str, producer: str | None = None
    ) -> Published:
        ids: list[str] = []
        for table in tables:
            self.tables += (hidden(table, self.hasher) if self.hasher else table).to_pylist()
            ids.append(f"bulk-{len(ids)}")
        return Published(len(self.tables), ids)

    def publish(
        self, records: Iterable[dict[str, Any]], *, source: str, producer: str | None = None
    ) -> Published:
        kept = list(records)
        self.published.append((kept, producer))
        return Published(len(kept), ["live"])

    def publish_whole(
        self, records: list[dict[str, Any]], *, batch_id: str, source: str, producer: str | None
    ) -> Published:
        if self.fail_with is not None:
            raise self.fail_with
        self.published.append((records, producer))
        return Published(len(records), [batch_id])

    def reachable(self) -> str | None:
        return "broker unreachable: fake" if self.fail_with is not None else None


class MemoryProducer:
    """What RawPublisher needs of common.kafka.BlockingProducer: keeps the
    values it is given (``topics``: the topic of each), acknowledged at once."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.topics: list[str] = []

    def send_all(
        self,
        topic: str,
        messages: Iterable[tuple[str | bytes | None, bytes]],
        timeout: float = 30.0,
    ) -> int:
        values = [value for _, value in messages]
        self.messages += values
        self.topics += [topic] * len(values)
        return len(self.messages)

    def records(self) -> list[dict[str, Any]]:
        """Every record published, in order: an envelope's as sent, a bulk
        message's as its text cells (an absent field left out)."""
        found: list[dict[str, Any]] = []
        for topic, value in zip(self.topics, self.messages, strict=True):
            if topic == bulk.RAW_TOPIC:
                rows = bulk.read_table(value).to_pylist()
                found += [{k: v for k, v in row.items() if v is not None} for row in rows]
            else:
                found += json.loads(value)["records"]
        return found


class MemoryIdempotencyKeys:
    """Implements services.ingestor.ports.IdempotencyKeys in a dictionary."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], tuple[str, int | None, Any]] = {}
        self.fail_with: BaseException | None = None

    def claim(self, producer: str, key: str, body: bytes) -> Previous | None:
        if self.fail_with is not None:
            raise self.fail_with
        held = self.keys.get((producer, key))
        if held is None:
            self.keys[(producer, key)] = (body_digest(body), None, None)
            return None
        digest, status, response = held
        return Previous(digest == body_digest(body), status, response)

    def complete(self, producer: str, key: str, status: int, response: Any) -> None:
        digest, _, _ = self.keys[(producer, key)]
        self.keys[(producer, key)] = (digest, status, response)

    def release(self, producer: str, key: str) -> None:
        self.keys.pop((producer, key), None)


class MemoryDeadLetters:
    """Implements services.aggregator.ports.DeadLetters."""

    def __init__(self) -> None:
        self.sent: list[DeadLetter] = []

    def send(self, letters: list[DeadLetter]) -> None:
        for letter in letters:  # as the Kafka adapter does: a letter that cannot be written raises
            deadletter.encode(letter)
        self.sent += letters


class MemoryLetterArchive:
    """Implements services.aggregator.ports.LetterArchive."""

    def __init__(self) -> None:
        self.kept: dict[str, DeadLetter] = {}

    def keep(self, letters: list[DeadLetter]) -> None:
        for letter in letters:
            self.kept.setdefault(letter.record_id, letter)


class MemoryOutbox:
    """Implements services.aggregator.ports.Outbox: counts the relays (reads
    of the log) and keeps what is published as written; the first
    ``failures`` calls raise ``ConnectionError``; ``older_pending``: a change
    numbered before a transaction's is in the log, as another writer's would."""

    def __init__(self, failures: int = 0) -> None:
        self.relays = 0
        self.failures = failures
        self.backlogs = 0
        self.older_pending = False
        self.written: list[list[Change]] = []

    def _fail(self) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker away")

    def publish_pending(self) -> int:
        self._fail()
        self.relays += 1
        self.older_pending = False
        return 0

    def publish_changes(self, changes: Sequence[Change]) -> int | None:
        self._fail()
        if self.older_pending:
            return None
        self.written.append(list(changes))
        return len(changes)

    def backlog(self) -> tuple[int, float]:
        self.backlogs += 1
        return 0, 0.0


class CountingRateLimit:
    """Implements services.ingestor.ports.RateLimit: ``allowed`` requests per
    producer, then a wait of ``wait`` seconds."""

    def __init__(self, allowed: int, wait: float = 2.5) -> None:
        self.allowed = allowed
        self.wait = wait
        self.seen: dict[str, int] = {}

    def admit(self, producer: str) -> float | None:
        self.seen[producer] = self.seen.get(producer, 0) + 1
        return None if self.seen[producer] <= self.allowed else self.wait


class MemoryBatchLedger:
    """Implements services.ingestor.ports.BatchLedger; ``clean`` and ``letters``
    stand for what the aggregator records (by batch id)."""

    def __init__(self, fail_with: BaseException | None = None) -> None:
        self.batches: dict[str, OpenedBatch] = {}
        self.clean: dict[str, set[int]] = {}
        self.letters: dict[str, list[Letter]] = {}
        self.fail_with = fail_with

    def open(self, batch: OpenedBatch) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.batches[batch.batch_id] = batch

    def drop(self, batch_id: str) -> None:
        self.batches.pop(batch_id, None)

    def progress(self, producer: str, batch_id: str) -> BatchProgress | None:
        if self.fail_with is not None:
            raise self.fail_with
        batch = self.batches.get(batch_id)
        if batch is None or batch.producer != producer:
            return None
        clean = len(self.clean.get(batch_id, set()))
        received = datetime(2026, 1, 1, tzinfo=UTC)
        return BatchProgress(batch, received, clean, self.letters.get(batch_id, []))

    def reachable(self) -> str | None:
        return "database unavailable: fake" if self.fail_with is not None else None


class MemoryProgress:
    """Implements services.aggregator.ports.Progress: a set of positions per batch."""

    def __init__(self) -> None:
        self.clean: dict[str, set[int]] = {}

    def mark(self, clean: Mapping[str, Collection[int]]) -> None:
        for batch_id, positions in clean.items():
            self.clean.setdefault(batch_id, set()).update(positions)

    def close(self) -> None:
        pass


def _implements(
    aggregates: MemoryAggregates,
    letters: MemoryDeadLetters,
    outbox: MemoryOutbox,
    publisher: MemoryPublisher,
    keys: MemoryIdempotencyKeys,
    rate: CountingRateLimit,
    archive: MemoryLetterArchive,
    ledger: MemoryBatchLedger,
    progress: MemoryProgress,
) -> tuple[
    Aggregates,
    DeadLetters,
    Outbox,
    WholePublisher,
    BlockPublisher,
    IdempotencyKeys,
    RateLimit,
    LetterArchive,
    BatchLedger,
    Progress,
]:
    """Never called: mypy (`make lint`) checks here that each fake implements its port."""
    return aggregates, letters, outbox, publisher, publisher, keys, rate, archive, ledger, progress
