from __future__ import annotations

from pathlib import Path

from limits import parse
from pydantic import Field, field_validator

from common.kafka import MAX_MESSAGE_BYTES
from common.settings import PiiSettings
from schemas import limits
from services.ingestor.admission import RUNNING, WAITING

# Per producer and replica: ten requests a second, far above what a producer
# needs (a request carries up to 20,000 records), far below a flood.
PRODUCTION_RATE_LIMIT = "600/minute"
UNLIMITED = "unlimited"


class IngestorSettings(PiiSettings):
    ingestor_host: str = "127.0.0.1"
    ingestor_port: int = 8001
    # The cleaner spreads a message's records over the partitions of
    # indicators.clean by place: 2,000 make clean messages of about 500 on 4.
    batch_records: int = Field(
        2000, ge=1, le=10_000, description="Records per Kafka message (files)."
    )
    # The cleaner cuts a bulk message by place into one per partition of
    # indicators.clean.bulk: 40,000 make clean messages of about 10,000 on 4,
    # one aggregator transaction each (docs/measurements.md).
    bulk_records: int = Field(
        40_000,
        ge=1,
        le=limits.MAX_MESSAGE_RECORDS,  # what consumers take in one message
        description="Records per message of the bulk lane (files, pulls, large requests).",
    )
    bulk_from_records: int = Field(
        1_000,
        ge=1,
        description="An HTTP request of at least this many records goes to the bulk lane.",
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        le=MAX_MESSAGE_BYTES // 2,
        description="HTTP body limit; any body within it fits one Kafka message.",
    )
    delivery_timeout_ms: int = Field(10_000, ge=1000, description="Broker ack deadline.")
    max_records_per_request: int = Field(
        20_000,
        ge=1,
        le=limits.MAX_MESSAGE_RECORDS,
        description="HTTP: one request is one Kafka message, so it is bounded.",
    )
    producer_tokens: str | None = Field(
        None, description='JSON {"producer": "sha256:<hex>"}; `itte token NAME` makes one.'
    )
    producers_file: Path | None = Field(
        None,
        description="TOML (or .json) table of producers, tokens and scopes, read again "
        "when it changes; replaces ITTE_PRODUCER_TOKENS (docs/producers.md).",
    )
    idempotency_stale_seconds: float = Field(60.0, gt=0)
    idempotency_ttl_seconds: float = Field(
        24 * 3600.0, gt=0, description="A key may be used again this long after its claim."
    )
    batch_status_ttl_seconds: float = Field(
        30 * 24 * 3600.0, gt=0, description="How long `GET /observations/{id}` knows a batch."
    )
    pushes_at_once: int = Field(
        RUNNING, ge=1, description="HTTP pushes read and handled at once per worker."
    )
    pushes_waiting: int = Field(
        WAITING, ge=0, description="HTTP pushes waiting their turn per worker (503 beyond)."
    )
    rate_limit: str | None = Field(
        None,
        description='Requests per producer and replica, e.g. "60/minute"; unset: '
        f'unlimited in local runs, {PRODUCTION_RATE_LIMIT} in production; "{UNLIMITED}": none.',
    )

    @field_validator("rate_limit")
    @classmethod
    def _readable_limit(cls, value: str | None) -> str | None:
        if value is not None and value != UNLIMITED:
            parse(value)  # ValueError names what it could not read
        return value

    @property
    def producer_rate_limit(self) -> str | None:
        """The limit the ingestor applies: a public ingestor is not unlimited
        unless its operator says so."""
        if self.rate_limit == UNLIMITED:
            return None
        if self.rate_limit is None and not self.local:
            return PRODUCTION_RATE_LIMIT
        return self.rate_limit
