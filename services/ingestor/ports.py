"""What the ingestor's handlers need from the outside, as small protocols:
the Kafka and Postgres adapters implement them, and so do the unit tests' fakes
(tests/unit/fakes.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

    from services.ingestor.auth import Producers


@dataclass(frozen=True)
class Published:
    records: int
    batch_ids: list[str]


@dataclass(frozen=True)
class Previous:
    """What an earlier request with the same idempotency key left."""

    same_body: bool
    status: int | None  # None: still being processed
    response: Any


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class WholePublisher(Protocol):
    def publish_whole(
        self, records: list[dict[str, Any]], *, batch_id: str, source: str, producer: str | None
    ) -> Published:
        """All the records in one message (the batch ``batch_id``),
        acknowledged by the broker, or an error."""
        ...

    def reachable(self) -> str | None:
        """None if the broker answers now, else why not."""
        ...


class BlockPublisher(Protocol):
    """The bulk lane, for what the ingestor reads itself (files, pulls)."""

    hide: Callable[[dict[str, Any]], dict[str, Any]]  # personal fields → keyed hashes
    is_personal: Callable[[str], bool]  # a field or column name that holds personal data

    def publish_tables(
        self, tables: Iterable[pa.Table], *, source: str, producer: str | None = None
    ) -> Published:
        """Rows accepted at the edge, as text columns, acknowledged by the broker."""
        ...

    def publish(
        self, records: Iterable[dict[str, Any]], *, source: str, producer: str | None = None
    ) -> Published:
        """Records the columns cannot carry, one by one (the live lane)."""
        ...


@dataclass(frozen=True)
class OpenedBatch:
    """A batch as the ingestor publishes it: enough to answer its producer later."""

    batch_id: str
    producer: str
    accepted: int
    lines: list[int] | None = None  # the request line of each record; None: 1..accepted
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, why) in the request

    def line(self, position: int) -> int:
        """The request line of the record at ``position`` (1-based) in the batch."""
        if self.lines is not None and 0 < position <= len(self.lines):
            return self.lines[position - 1]
        return position


@dataclass(frozen=True)
class Letter:
    """A dead letter of the batch, as its producer may read it."""

    position: int | None  # None: a whole message, not one record
    stage: str
    reason: str
    detail: str


@dataclass(frozen=True)
class BatchProgress:
    batch: OpenedBatch
    received_at: datetime
    clean: int  # records in the results
    letters: list[Letter]


class BatchLedger(Protocol):
    def open(self, batch: OpenedBatch) -> None:
        """Record the batch before it is published (so that the aggregator,
        however fast, finds it)."""
        ...

    def drop(self, batch_id: str) -> None:
        """Forget a batch that was not published after all."""
        ...

    def progress(self, producer: str, batch_id: str) -> BatchProgress | None:
        """What became of ``producer``'s batch; None for any other batch."""
        ...

    def reachable(self) -> str | None:
        """None if the database answers now, else why not."""
        ...


class IdempotencyKeys(Protocol):
    def claim(self, producer: str, key: str, body: bytes) -> Previous | None:
        """None if the key is new (now claimed), else what the earlier request left."""
        ...

    def complete(self, producer: str, key: str, status: int, response: Any) -> None: ...

    def release(self, producer: str, key: str) -> None:
        """Forget a claim whose request failed, so that a retry can go through."""
        ...


class RateLimit(Protocol):
    def admit(self, producer: str) -> float | None:
        """None if ``producer`` may send one more request now, else the
        seconds to wait before it may."""
        ...


class ProducerDirectory(Protocol):
    def current(self) -> Producers:
        """The producers in force now (a file may be read again between calls)."""
        ...
