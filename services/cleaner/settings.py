from __future__ import annotations

from typing import Literal

from pydantic import Field

from common.settings import PiiSettings
from schemas import limits


class CleanerSettings(PiiSettings):
    unknown_indicators: Literal["rejeter", "non_agregeable"] = Field(
        "rejeter",
        description="Indicators missing from the catalogue: dead-letter, or keep "
        "them at commune level only.",
    )
    clean_batch_records: int = Field(
        500, ge=1, le=limits.MAX_MESSAGE_RECORDS, description="Records per clean message."
    )
    clean_bulk_records: int = Field(
        10_000,
        ge=1,
        le=limits.MAX_MESSAGE_RECORDS,  # what the aggregator takes in one message
        description="Records per clean message of the bulk lane (one aggregator transaction).",
    )
    clock_skew_seconds: float = Field(
        300.0,
        ge=0,
        description="How far ahead of the cleaner's clock a message's acceptance time may be "
        "(beyond: future_timestamp).",
    )
    cleaner_host: str = "127.0.0.1"
    cleaner_port: int = 6066
