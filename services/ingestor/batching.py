"""Pure parsing and batching of what producers send (no Kafka here).

JSON numbers with a fraction are kept as their exact decimal text
(``parse_float=str``): a binary float would round some of them, and the
cleaner reads decimal text exactly.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from schemas import limits
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
    """Records with their line (NDJSON) or position (JSON array), and the
    lines refused; ``over``: the body holds more records than its limit
    (reading stopped there)."""

    records: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    over: bool = False

    def add(self, line: int, record: Any) -> None:
        if not isinstance(record, dict):
            self.errors.append(LineError(line, "not a JSON object"))
        elif len(record) > limits.MAX_FIELDS:
            # Refused now, not kept until validate(): 20,000 records of a
            # hundred keys each held 200 MB (issue #30).
            self.errors.append(LineError(line, schema_problem(record) or "too many fields"))
        else:
            self.records.append((line, record))


# Bodies are read a record at a time and reading stops past the record
# limit: a 16 MiB body of `[{},{},…]` is 5.6 million objects, about 1.5 GB
# as one json.loads (issue #30), and at most limit + 1 of them this way.
DECODER = json.JSONDecoder(parse_float=str)
BLANKS = re.compile(r"[ \t\n\r]*")  # JSON's whitespace
NEWLINE = re.compile(rb"\r\n|\r|\n")  # where bytes.splitlines cuts


def parse_json_body(body: bytes, limit: int | None = None) -> Parsed:
    """One JSON object, or an array of them (positions count from 1); at
    most ``limit`` records read (``Parsed.over`` when there are more)."""
    try:
        # As json.loads reads bytes: UTF-8, -16 or -32, by the first bytes.
        text = body.decode(json.detect_encoding(body), "surrogatepass")
        return _json_document(text, limit)
    except (ValueError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", 1)
        raise BodyError([LineError(line, f"invalid JSON: {getattr(exc, 'msg', exc)}")]) from None
    except RecursionError:
        raise BodyError([LineError(1, "invalid JSON: nested too deep")]) from None


def _json_document(text: str, limit: int | None) -> Parsed:
    parsed = Parsed()
    at = _blanks(text, 0)
    if not text.startswith("[", at):
        parsed.add(1, DECODER.decode(text))
        return parsed
    at = _blanks(text, at + 1)
    position, more = 0, not text.startswith("]", at)
    while more:
        value, at = DECODER.raw_decode(text, at)
        position += 1
        if limit is not None and position > limit:
            parsed.over = True
            return parsed
        parsed.add(position, value)
        at = _blanks(text, at)
        more = text.startswith(",", at)
        if more:
            at = _blanks(text, at + 1)
        elif not text.startswith("]", at):
            raise json.JSONDecodeError("Expecting ',' delimiter", text, at)
    end = _blanks(text, at + 1)
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return parsed


def _blanks(text: str, at: int) -> int:
    """Where the JSON whitespace from ``at`` ends."""
    found = BLANKS.match(text, at)
    return found.end() if found else at


def parse_ndjson_body(body: bytes, limit: int | None = None) -> Parsed:
    """One JSON object per line; blank lines are skipped; at most ``limit``
    records read (``Parsed.over`` when there are more)."""
    parsed = Parsed()
    count = 0
    for number, line in enumerate(_lines(body), start=1):
        if not line.strip():
            continue
        count += 1
        if limit is not None and count > limit:
            parsed.over = True
            return parsed
        try:
            parsed.add(number, json.loads(line, parse_float=str))
        except (ValueError, UnicodeDecodeError) as exc:
            parsed.errors.append(LineError(number, f"invalid JSON: {getattr(exc, 'msg', exc)}"))
        except RecursionError:
            parsed.errors.append(LineError(number, "invalid JSON: nested too deep"))
    return parsed


def _lines(body: bytes) -> Iterator[bytes]:
    """The lines of ``body`` as ``bytes.splitlines`` cuts them, one at a time."""
    start = 0
    for newline in NEWLINE.finditer(body):
        yield body[start : newline.start()]
        start = newline.end()
    if start < len(body):
        yield body[start:]


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
