"""One batch of clean messages, handled in one transaction (more only to
isolate a record Postgres refuses): decode, apply, dead-letter what was
refused. The relay publishes the committed changes beside the batches, as
their transactions wrote them, so the next batch waits neither for the
broker nor for a second read of the rows. Blocking: the entrypoint runs both
in threads."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from common import metrics
from common.errors import isolate
from common.referential import Referential
from schemas.clean import CleanObservation, batch_position
from schemas.deadletter import DeadLetter
from services.aggregator import columns
from services.aggregator.changes import Change
from services.aggregator.intake import decode, foreign_letter, refused_letter, unplaced_letter
from services.aggregator.ports import (
    Aggregates,
    ApplyResult,
    DeadLetters,
    EditionMoved,
    FastResult,
    LetterArchive,
    NewCommunes,
    Outbox,
    Progress,
)
from services.aggregator.rules import AggregationRules

SERVICE = "aggregator"
WAITING_MAX = 10_000  # batches whose publication is yet to be measured
# Changes held for publication as written, while the broker is away; past
# this many, they are dropped and the change log is read instead (it holds
# every change not yet published, whatever the memory of the process). A
# change is about 600 bytes: 60,000 are about 36 MB.
CHANGES_HELD = 60_000
# The bulk lane waits before its next message while the relay holds more
# than this: a file's changes published as written, not dropped and read
# back (Relay.catching_up).
BULK_HELD = 12_000
# The outbox backlog (a count over the pending changes) is measured at most
# this often: after every relay round it cost Postgres about 7 ms a round at
# 5,000 corrections/s, for gauges Prometheus scrapes every 15 s and an alert
# that waits 5 minutes.
BACKLOG_EVERY = 5.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchOutcome:
    records: int  # decoded
    stale: int  # older than what was stored: no change
    dead: dict[str, int]  # dead letters by reason
    oldest: int | None  # when the oldest record was accepted (µs), for freshness
    # What each committed transaction numbered, in commit order, to publish.
    changes: list[list[Change]] = field(default_factory=list)


def on_the_databases_edition(
    attempt: Callable[[], BatchOutcome], use: Callable[[Referential], None]
) -> BatchOutcome:
    """``attempt``, and once more on the edition of the map the database
    moved to meanwhile (:class:`EditionMoved`: nothing was written; what an
    earlier transaction of the batch wrote is replayed, which changes nothing)."""
    try:
        return attempt()
    except EditionMoved as moved:
        use(moved.edition)
        return attempt()


class BatchHandler:
    def __init__(self, store: Aggregates, letters: DeadLetters, progress: Progress) -> None:
        self.store = store
        self.letters = letters
        self.progress = progress

    def handle(self, values: list[bytes]) -> BatchOutcome:
        """Raises only what is not a record's fault (transient or fatal,
        common/errors.py): then nothing of the batch is acknowledged. On a
        new edition of the map, done again on it (a replay: what was
        written already changes nothing)."""
        with metrics.BATCH_SECONDS.labels(SERVICE).time():
            records, dead = decode(values)
            return on_the_databases_edition(
                lambda: self.applied(records, list(dead), [], len(values)), self.use
            )

    def use(self, edition: Referential) -> None:
        self.store.use(edition)
        log.info(
            "now placing on the edition %s of the map (%s)", edition.millesime, edition.version
        )

    def applied(
        self,
        records: list[CleanObservation],
        dead: list[DeadLetter],
        done: list[tuple[str, list[int], list[Change]]],
        messages: int,
    ) -> BatchOutcome:
        """``records`` through the store, each refused one isolated; then the
        dead letters sent and the records in the results marked. ``done``:
        (batch id, positions, changes) of records applied already (the bulk
        lane's set path)."""
        results, refused = isolate(self.store.apply, records) if records else ([], [])
        dead += [refused_letter(record, exc) for record, exc in refused]
        dead += [unplaced_letter(r) for result in results for r in result.unplaced]
        dead += [foreign_letter(f) for result in results for f in result.foreign]
        oldest = min((r.recu for r in records if r.recu > 0), default=None)
        observe_freshness("stored", oldest)
        self.letters.send(dead)
        marks = in_results(records, dead)
        for batch_id, positions, _ in done:
            marks[batch_id] += positions
        self.progress.mark(marks)
        changes = [c for _, _, c in done if c] + [r.changes for r in results if r.changes]
        return self._counted(results, dead, oldest, changes, messages, len(records))

    def _counted(
        self,
        results: list[ApplyResult],
        dead: list[DeadLetter],
        oldest: int | None,
        changes: list[list[Change]],
        messages: int,
        records: int,
    ) -> BatchOutcome:
        reasons = dict(Counter(d.reason for d in dead))
        outcome = BatchOutcome(
            records, sum(result.stale for result in results), reasons, oldest, changes
        )
        metrics.RECORDS_IN.labels(SERVICE).inc(outcome.records)
        metrics.STALE.labels(SERVICE).inc(outcome.stale)
        for reason, n in reasons.items():
            metrics.DEAD_LETTERS.labels(SERVICE, reason).inc(n)
        log.debug(
            "batch of %d messages: %d records, %d dead-lettered",
            messages,
            outcome.records,
            len(dead),
            extra={
                "messages": messages,
                "records": outcome.records,
                "stale": outcome.stale,
                "dead_letters": len(dead),
            },
        )
        return outcome

    def close(self) -> None:
        """Drop the database connections: after a transient failure (a
        database restart, say) the retry starts on fresh ones."""
        self.store.close()
        self.progress.close()


class BulkBatchHandler:
    """One message of the bulk lane: its new communes applied as a set
    (``NewCommunes``, one transaction, more only to isolate a row Postgres
    refuses), every other record by the live lane's handler."""

    def __init__(
        self,
        new_communes: NewCommunes,
        batches: BatchHandler,
        rules: AggregationRules,
        placed: Callable[[pa.Array], pa.Array],
    ) -> None:
        self.new_communes = new_communes
        self.batches = batches
        self.rules = rules
        self.placed = placed  # which communes the referential has

    def handle(self, value: bytes) -> BatchOutcome:
        """Raises only what is not a record's fault, as BatchHandler.handle;
        on a new edition of the map, done again on it, as there."""
        return on_the_databases_edition(lambda: self._handle(value), self.use)

    def use(self, edition: Referential) -> None:
        self.new_communes.use(edition)
        self.batches.use(edition)

    def _handle(self, value: bytes) -> BatchOutcome:
        with metrics.BATCH_SECONDS.labels(SERVICE).time():
            rows = columns.read(value)
            fast, others, unplaced = columns.split(rows.table, self.rules, self.placed)

            def apply(picked: list[int]) -> FastResult:
                return self.new_communes.apply(
                    fast.take(pa.array(picked, pa.int64())), rows.batch_id, rows.producer
                )

            results, refused = isolate(apply, list(range(fast.num_rows)))
            # The rows whose commune had a row already go one by one.
            existing = pa.array([p for r in results for p in r.existing], pa.int32())
            left = fast.filter(pc.is_in(fast.column("position"), value_set=existing))
            records = columns.observations(
                pa.concat_tables([others, unplaced, left]), rows.batch_id, rows.producer
            )
            failed = columns.observations(
                fast.take(pa.array([i for i, _ in refused], pa.int64())),
                rows.batch_id,
                rows.producer,
            )
            dead = rows.dead + [
                refused_letter(record, exc)
                for record, (_, exc) in zip(failed, refused, strict=True)
            ]
            done = [(rows.batch_id, [p + 1 for p in r.written], r.changes) for r in results]
            return self.batches.applied(records + rows.records, dead, done, 1)

    def close(self) -> None:
        self.new_communes.close()
        self.batches.close()


class Relay:
    """Publishes the committed changes, woken after every batch and on a
    timer: each transaction's changes as it wrote them when nothing older is
    pending, else (and on the timer) what the change log holds after the
    cursor. ``published`` freshness is measured for the batches committed
    since the last run."""

    def __init__(self, outbox: Outbox, *, backlog_every: float = BACKLOG_EVERY) -> None:
        self.outbox = outbox
        self.backlog_every = backlog_every
        self._lock = threading.Lock()  # committed() and handle() run in different threads
        self._waiting: list[int] = []  # the oldest record of each batch not yet relayed
        self._written: list[list[Change]] = []  # each transaction's changes, in commit order
        self._held = 0  # changes in _written
        self._read_log = False  # _written was dropped: the log holds what it had
        self._measured: float | None = None  # when the backlog was last measured (monotonic)

    def committed(self, outcome: BatchOutcome) -> None:
        # Bounded while the broker is away: the first batches waiting are the
        # oldest, the ones the freshness alert is about.
        with self._lock:
            if outcome.oldest is not None and len(self._waiting) < WAITING_MAX:
                self._waiting.append(outcome.oldest)
            self._written += outcome.changes
            self._held += sum(len(changes) for changes in outcome.changes)
            if self._held > CHANGES_HELD:
                self._written, self._held, self._read_log = [], 0, True

    def catching_up(self) -> bool:
        """Whether the relay holds many changes yet to publish."""
        with self._lock:
            return self._held > BULK_HELD

    def handle(self) -> int:
        """How many changes were published; raises what publishing raised,
        and what it was for is published from the log at the next run."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
            written, self._written, self._held = self._written, [], 0
            read_log, self._read_log = self._read_log or not written, False
        try:
            published = 0
            for changes in written:
                sent = None if read_log else self.outbox.publish_changes(changes)
                read_log = read_log or sent is None
                published += sent or 0
            if read_log:  # also covers the written ones left: they are in the log
                published += self.outbox.publish_pending()
                metrics.LOG_READS.labels(SERVICE).inc()
        except BaseException:
            with self._lock:
                self._waiting = waiting + self._waiting
                self._read_log = True
            raise
        for oldest in waiting:
            observe_freshness("published", oldest)
        metrics.AGGREGATES_PUBLISHED.labels(SERVICE).inc(published)
        now = time.monotonic()
        if self._measured is None or now - self._measured >= self.backlog_every:
            self._measured = now
            pending, age = self.outbox.backlog()
            metrics.OUTBOX_PENDING.labels(SERVICE).set(pending)
            metrics.OUTBOX_OLDEST.labels(SERVICE).set(age)
        return published


def observe_freshness(stage: str, accepted_micros: int | None) -> None:
    if accepted_micros is not None:
        age = max(0.0, time.time() - accepted_micros / 1e6)
        metrics.FRESHNESS.labels(SERVICE, stage).observe(age)


def in_results(records: list[CleanObservation], dead: list[DeadLetter]) -> dict[str, list[int]]:
    """Positions, by batch, of the records that were not dead-lettered (stale
    ones included: they were counted, a newer version won)."""
    refused = {d.record_id for d in dead}
    positions: defaultdict[str, list[int]] = defaultdict(list)
    for record in records:
        if record.record_id not in refused and (found := batch_position(record.record_id)):
            positions[found[0]].append(found[1])
    return positions


class Archive:
    """The dead-letter topic, kept in Postgres (``dead_letters``)."""

    def __init__(self, archive: LetterArchive) -> None:
        self.archive = archive

    def handle(self, values: list[bytes]) -> int:
        """How many letters were read; a message that is not a dead letter
        (nobody of ours writes one) is logged, by its size only, and skipped."""
        letters = []
        for value in values:
            try:
                letters.append(DeadLetter.model_validate_json(value))
            except ValidationError:
                log.warning("skipped a %d-byte message that is not a dead letter", len(value))
        _, refused = isolate(self.archive.keep, letters)
        for letter, exc in refused:  # a dead letter cannot be dead-lettered: say so
            log.error("dead letter %s not archived: %s", letter.record_id, type(exc).__name__)
        return len(letters)
