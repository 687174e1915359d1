"""What the aggregator's batch handler needs from the outside, as small
protocols: the Postgres and Kafka adapters implement them, and so do the
unit tests' fakes (tests/unit/fakes.py)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

from common.errors import Fatal
from common.referential import Referential
from schemas.clean import CleanObservation
from schemas.deadletter import DeadLetter
from services.aggregator.changes import Change


@dataclass(frozen=True)
class ApplyResult:
    written: int
    stale: int
    aggregates_changed: int
    unplaced: list[CleanObservation]  # commune outside this referential: dead-letter them
    foreign: list[CleanObservation]  # another producer's
    # What the transaction numbered (every level), to publish once it committed.
    changes: list[Change] = field(default_factory=list)


class EditionMoved(Fatal):
    """`itte referentiel charger` made ``edition`` the database's and placed
    the stored values on it: the batch, of which nothing was written, is to
    be done again on it (the handlers do). Elsewhere, it stops the service
    as any Fatal does."""

    def __init__(self, edition: Referential) -> None:
        super().__init__(f"the database moved to the edition {edition.millesime} of the map")
        self.edition = edition


class Aggregates(Protocol):
    def apply(self, records: list[CleanObservation]) -> ApplyResult:
        """Store the records and move every aggregate above them, atomically;
        replaying records already applied changes nothing. Raises
        :class:`EditionMoved`, writing nothing, when the database is on
        a later edition of the map than the store."""
        ...

    def use(self, edition: Referential) -> None:
        """Place the next records on ``edition``."""
        ...

    def close(self) -> None:
        """Drop the connection (the next call reconnects)."""
        ...


@dataclass
class FastResult:
    """Rows by their position in the raw batch."""

    written: list[int] = field(default_factory=list)  # observation and commune row written
    existing: list[int] = field(default_factory=list)  # left: the commune had a row already
    changes: list[Change] = field(default_factory=list)


class NewCommunes(Protocol):
    """The bulk lane's set path (bulk.py)."""

    def apply(self, rows: pa.Table, batch_id: str, producer: str | None) -> FastResult:
        """Write the rows whose commune and observation are new, atomically;
        leave the others (``FastResult.existing``). Raises ``EditionMoved``
        as :meth:`Aggregates.apply` does."""
        ...

    def use(self, edition: Referential) -> None:
        """Place the next tables on ``edition``."""
        ...

    def close(self) -> None:
        """Drop the connection (the next call reconnects)."""
        ...


class Outbox(Protocol):
    def publish_pending(self) -> int:
        """Publish every committed aggregate change not yet published; how many."""
        ...

    def publish_changes(self, changes: Sequence[Change]) -> int | None:
        """Publish the changes of one committed transaction as it wrote them,
        when nothing numbered before them is pending: how many; 0 when they
        were published already (by a read of the log); None when the log must
        be read (:meth:`publish_pending`) for something older first."""
        ...

    def backlog(self) -> tuple[int, float]:
        """Changes committed and not yet published, and the age in seconds of
        the oldest (0 when there is none)."""
        ...


class DeadLetters(Protocol):
    def send(self, letters: list[DeadLetter]) -> None:
        """All of them acknowledged by the broker, or an error."""
        ...


class LetterArchive(Protocol):
    def keep(self, letters: list[DeadLetter]) -> None:
        """Store them; a letter already kept (a replay) is kept once."""
        ...


class Progress(Protocol):
    def mark(self, clean: Mapping[str, Collection[int]]) -> None:
        """Record that these records (1-based positions, by batch id) are in
        the results; marking one again changes nothing."""
        ...

    def close(self) -> None:
        """Drop the connection (the next call reconnects)."""
        ...
