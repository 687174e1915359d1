"""Pure parsing and batching of what producers send (no Kafka here).

JSON numbers with a fraction are kept as their exact decimal text
(``parse_float=str``): a binary float would round some of them, and the
cleaner reads decimal text exactly.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from schemas.raw import RawBatch


@dataclass(frozen=True)
class LineError:
    line: int
    error: str


class BodyError(ValueError):
    """The request body cannot be read; ``errors`` names each bad line."""

    def __init__(self, errors: list[LineError]) -> None:
        super().__init__(f"{len(errors)} bad line(s)")
        self.errors = errors


def parse_json_body(body: bytes) -> list[Any]:
    """One JSON object, or an array of them."""
    try:
        document = json.loads(body, parse_float=str)
    except (ValueError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", 1)
        raise BodyError([LineError(line, f"invalid JSON: {getattr(exc, 'msg', exc)}")]) from None
    records = document if isinstance(document, list) else [document]
    errors = [
        LineError(i + 1, "not a JSON object")
        for i, r in enumerate(records)
        if not isinstance(r, dict)
    ]
    if errors:
        raise BodyError(errors)
    return records


def parse_ndjson_body(body: bytes) -> list[Any]:
    """One JSON object per line; blank lines are skipped."""
    records: list[Any] = []
    errors: list[LineError] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, parse_float=str)
        except (ValueError, UnicodeDecodeError) as exc:
            errors.append(LineError(number, f"invalid JSON: {getattr(exc, 'msg', exc)}"))
            continue
        if not isinstance(record, dict):
            errors.append(LineError(number, "not a JSON object"))
            continue
        records.append(record)
    if errors:
        raise BodyError(errors)
    return records


def encode_batch(batch: RawBatch) -> bytes:
    return batch.model_dump_json().encode()


def batches(
    records: Iterable[dict[str, Any]],
    *,
    source: str,
    size: int,
    received_at: datetime | None = None,
) -> Iterator[RawBatch]:
    """Cut a stream of records into envelopes of at most ``size`` records."""
    received_at = received_at or datetime.now(UTC)
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield RawBatch(
            batch_id=uuid.uuid4().hex, source=source, received_at=received_at, records=chunk
        )
