"""What the ingestor's HTTP handler needs from the outside, as small protocols:
the Kafka and Postgres adapters implement them, and so do the unit tests' fakes."""

from __future__ import annotations

from typing import Any, Protocol

from services.ingestor.idempotency import Previous
from services.ingestor.publisher import Published


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

    def release(self, producer: str, key: str) -> None: ...
