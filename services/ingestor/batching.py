"""Pure parsing and batching of what producers send (no Kafka here).

JSON numbers with a fraction are kept as their exact decimal text
(``parse_float=str``): a binary float would round some of them, and the
cleaner reads decimal text exactly.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from schemas.raw import RawBatch, schema_problem


@dataclass(frozen=True)
class LineError:
    line: int
    error: str


class BodyError(ValueError):
    """The request body cannot be read at all; ``errors`` says where."""

    def __init__(self, errors: list[LineError]) -> None:
        super().__init__(f"{len(errors)} bad line(s)")
        self.errors = errors


@dataclass
class Parsed:
    """Records with their line (NDJSON) or position (JSON array), and the lines refused."""

    records: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)

    def add(self, line: int, record: Any) -> None:
        if isinstance(record, dict):
            self.records.append((line, record))
        else:
            self.errors.append(LineError(line, "not a JSON object"))


def parse_json_body(body: bytes) -> Parsed:
    """One JSON object, or an array of them (positions count from 1)."""
    try:
        document = json.loads(body, parse_float=str)
    except (ValueError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", 1)
        raise BodyError([LineError(line, f"invalid JSON: {getattr(exc, 'msg', exc)}")]) from None
    except RecursionError:
        raise BodyError([LineError(1, "invalid JSON: nested too deep")]) from None
    parsed = Parsed()
    for position, record in enumerate(document if isinstance(document, list) else [document], 1):
        parsed.add(position, record)
    return parsed


def parse_ndjson_body(body: bytes) -> Parsed:
    """One JSON object per line; blank lines are skipped."""
    parsed = Parsed()
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            parsed.add(number, json.loads(line, parse_float=str))
        except (ValueError, UnicodeDecodeError) as exc:
            parsed.errors.append(LineError(number, f"invalid JSON: {getattr(exc, 'msg', exc)}"))
        except RecursionError:
            parsed.errors.append(LineError(number, "invalid JSON: nested too deep"))
    return parsed


def validate(parsed: Parsed) -> Parsed:
    """Check each record against the raw schema; refused ones move to the errors."""
    checked = Parsed(errors=list(parsed.errors))
    for line, record in parsed.records:
        problem = schema_problem(record)
        if problem is None:
            checked.records.append((line, record))
        else:
            checked.errors.append(LineError(line, problem))
    checked.errors.sort(key=lambda e: e.line)
    return checked


def encode_batch(batch: RawBatch) -> bytes:
    return batch.model_dump_json().encode()


def batches(
    records: Iterable[dict[str, Any]],
    *,
    source: str,
    size: int,
    producer: str | None = None,
    received_at: datetime | None = None,
) -> Iterator[RawBatch]:
    """Cut a stream of records into envelopes of at most ``size`` records."""
    received_at = received_at or datetime.now(UTC)
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield RawBatch(
            batch_id=uuid.uuid4().hex,
            source=source,
            producer=producer,
            received_at=received_at,
            records=chunk,
        )
