"""``indicators.deadletter``: records a stage refused, with the reason.

The payload never carries clear personal data: configured PII fields are
replaced by their keyed hash before a record is dead-lettered.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, field_validator

from schemas import limits

TOPIC = "indicators.deadletter"


class DeadLetter(BaseModel):
    record_id: str
    stage: str = Field(description="`ingestor`, `cleaner` or `aggregator`.")
    reason: str = Field(description="Machine-readable: `invalid_schema`, `unknown_code`, ...")
    detail: str = Field(description="Human-readable explanation.")
    payload: dict[str, Any] | None = Field(description="The record, PII hashed.")
    at: datetime

    @field_validator("record_id", "stage", "reason", "detail", mode="before")
    @classmethod
    def _writable(cls, value: Any) -> Any:
        return writable(value) if isinstance(value, str) else value


def writable(text: str) -> str:
    """``text`` as JSON and Postgres can always hold it: a NUL or a lone
    surrogate (a record id read from a hostile message) written as its
    escape. A letter that cannot be sent would stop its stage on the same
    message at every restart, and its partition with it."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def kept(value: Any) -> Any:
    """A payload value as a dead letter may carry it: within the bounds, or
    replaced by why it was not kept (a NUL, 5,000 characters, NaN...)."""
    try:
        limits.check_scalar(value)
    except limits.OutOfBounds as exc:
        return f"(not kept: {exc})"
    return str(value) if isinstance(value, Decimal | float) else value


def encode(letter: DeadLetter) -> bytes:
    """The dead letter as JSON; without its payload if that cannot be written
    (a dead letter must never fail to be sent)."""
    try:
        return letter.model_dump_json().encode()
    except ValueError:  # pydantic's serialization error: text that is not Unicode
        return letter.model_copy(update={"payload": None}).model_dump_json().encode()
