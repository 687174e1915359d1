"""What the aggregator takes in and what it turns away: clean messages,
decoded record by record when they must be, and the dead letters of the
records it refuses."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import psycopg
from pydantic import ValidationError

from common.errors import unexpected
from schemas import deadletter, limits
from schemas.clean import CleanBatch, CleanObservation, record_id
from schemas.deadletter import DeadLetter
from schemas.limits import MAX_RECORD_ID_CHARS
from schemas.raw import describe

STAGE = "aggregator"


def decode(values: list[bytes]) -> tuple[list[CleanObservation], list[DeadLetter]]:
    """Clean records, and a dead letter for each record (or message) that is not one."""
    records: list[CleanObservation] = []
    dead: list[DeadLetter] = []
    for value in values:
        if limits.json_values_over(value):  # refused unread: a message never crashes us
            detail = f"more than {limits.MAX_MESSAGE_VALUES:,} JSON values in one message"
            dead.append(letter(message_id(value), "invalid_message", detail))
            continue
        try:
            records += CleanBatch.model_validate_json(value).records
        except ValueError:  # the fast path failed (ValidationError is one): record by record
            good, bad = decode_one_by_one(value)
            records += good
            dead += bad
    return records, dead


def message_id(value: bytes) -> str:
    """A message's name in its dead letters when it has none of its own."""
    return f"aggregator:sha256:{hashlib.sha256(value).hexdigest()[:24]}"


def decode_one_by_one(value: bytes) -> tuple[list[CleanObservation], list[DeadLetter]]:
    named = message_id(value)
    try:
        document = json.loads(value)
        items = document["records"]
        batch_id = str(document.get("batch_id", named))[:MAX_RECORD_ID_CHARS]
        if not isinstance(items, list):
            raise TypeError("records is not a list")
    except Exception as exc:  # not JSON, nested too deep, not an envelope
        return [], [letter(named, "invalid_message", f"not a CleanBatch: {why(exc)}")]
    records: list[CleanObservation] = []
    dead: list[DeadLetter] = []
    for index, item in enumerate(items):
        try:
            records.append(CleanObservation.model_validate(item))
        except Exception as exc:
            detail = describe(exc) if isinstance(exc, ValidationError) else type(exc).__name__
            dead.append(
                letter(own_id(item) or record_id(batch_id, index), "invalid_schema", detail)
            )
    return records, dead


def why(exc: Exception) -> str:
    """What was wrong with a message, without any of its bytes: the repr of
    a UnicodeDecodeError holds the whole message, a KeyError the key."""
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON ({exc.msg} at character {exc.pos})"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 (byte {exc.start})"
    if isinstance(exc, KeyError | TypeError):
        return "not an envelope with a list of records"
    return type(exc).__name__


def own_id(item: Any) -> str | None:
    """The record's own id, when it has a usable one."""
    found = item.get("record_id") if isinstance(item, dict) else None
    return found if isinstance(found, str) and 0 < len(found) <= MAX_RECORD_ID_CHARS else None


def letter(
    record_id: str, reason: str, detail: str, record: CleanObservation | None = None
) -> DeadLetter:
    payload = (
        None
        if record is None
        else {k: deadletter.kept(v) for k, v in record.model_dump(exclude={"pii"}).items()}
    )
    return DeadLetter(
        record_id=record_id,
        stage=STAGE,
        reason=reason,
        detail=detail,
        payload=payload,
        at=datetime.now(UTC),
    )


def unplaced_letter(record: CleanObservation) -> DeadLetter:
    detail = f"commune {record.commune} is not in the aggregator's referential"
    return letter(record.record_id, "unknown_code", detail, record)


def foreign_letter(record: CleanObservation) -> DeadLetter:
    # The owner is not named: who publishes what is not every producer's to know.
    detail = (
        "this observation belongs to another producer; only its owner can change it, "
        "or an operator hand it over (itte proprietaire)"
    )
    return letter(record.record_id, "other_producer", detail, record)


def refused_letter(record: CleanObservation, exc: Exception) -> DeadLetter:
    if isinstance(exc, psycopg.Error):
        detail = f"Postgres refused it: SQLSTATE {exc.sqlstate} ({type(exc).__name__})"
        return letter(record.record_id, "database_error", detail, record)
    detail = unexpected(exc, "aggregating a record")
    return letter(record.record_id, "internal_error", detail, record)
