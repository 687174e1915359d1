"""What a producer reads of its batch (``GET /observations/{batch_id}``): the
counts and every rejected line, in the request's own line numbers."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, Field

from services.ingestor.ports import BatchProgress

# What the ingestor names batches (uuid4 hex); anything else is unknown
# without asking the database (which would refuse a NUL, for one).
BATCH_ID = re.compile(r"[0-9a-f]{32}")
REFUSED_AT_REQUEST = "invalid_record"


class RejectedLine(BaseModel):
    line: int | None = Field(
        description="Line (NDJSON) or position (JSON array) in the request; null when a "
        "whole message was refused."
    )
    stage: str = Field(description="`ingestor` (in the request), `cleaner` or `aggregator`.")
    reason: str = Field(description="A stable code, e.g. `unknown_code`, `invalid_value`.")
    detail: str


class BatchStatus(BaseModel):
    batch_id: str
    received_at: datetime
    accepted: int = Field(description="Records published (the 202's `accepted`).")
    clean: int = Field(description="Of those, records in the results.")
    dead_lettered: int = Field(description="Of those, records refused after the 202.")
    pending: int = Field(description="Of those, records still on their way.")
    complete: bool = Field(description="True once every accepted record is clean or dead-lettered.")
    refused: int = Field(description="Lines refused in the request itself (`mode=partial`).")
    rejected: list[RejectedLine] = Field(description="Every refused line, in line order.")


def batch_status(progress: BatchProgress) -> BatchStatus:
    batch = progress.batch
    rejected = [
        RejectedLine(line=line, stage="ingestor", reason=REFUSED_AT_REQUEST, detail=error)
        for line, error in batch.refused
    ] + [
        RejectedLine(
            line=None if letter.position is None else batch.line(letter.position),
            stage=letter.stage,
            reason=letter.reason,
            detail=letter.detail,
        )
        for letter in progress.letters
    ]
    rejected.sort(key=lambda r: (r.line is not None, r.line or 0))
    dead = len(progress.letters)
    pending = max(0, batch.accepted - progress.clean - dead)
    return BatchStatus(
        batch_id=batch.batch_id,
        received_at=progress.received_at,
        accepted=batch.accepted,
        clean=progress.clean,
        dead_lettered=dead,
        pending=pending,
        complete=pending == 0,
        refused=len(batch.refused),
        rejected=rejected,
    )
