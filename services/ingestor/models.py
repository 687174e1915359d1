"""What the ingestor answers a push, as response models (OpenAPI is made
of them), and a push as the handler receives it, without HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

Mode = Literal["atomic", "partial"]


class RejectedLine(BaseModel):
    line: int
    error: str


class Accepted(BaseModel):
    accepted: int
    batch_ids: list[str]
    rejected: list[RejectedLine] = []
    tracked: bool = Field(
        True,
        description="False when Postgres was away: the records are published all the same, "
        "but `GET /observations/{batch_id}` will not know this batch.",
    )


class Refusal(BaseModel):
    """A refused request: nothing of it was published."""

    detail: str
    errors: list[RejectedLine] | None = Field(None, description="Each bad line and why.")


@dataclass(frozen=True)
class Answer:
    status: int
    content: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Submission:
    producer: str  # ANONYMOUS when authentication is off
    body: bytes | None  # None: over the body limit
    content_type: str = "application/json"
    mode: Mode = "atomic"
    idempotency_key: str | None = None
