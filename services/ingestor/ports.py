"""What the ingestor's handlers need from the outside, as small protocols:
the Kafka and Postgres adapters implement them, and so do the unit tests' fakes
(tests/unit/fakes.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol


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
        self, records: list[dict[str, Any]], *, source: str, producer: str | None
    ) -> Published:
        """All the records in one message, acknowledged by the broker, or an error."""
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
