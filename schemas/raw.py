"""``indicators.raw``: observations as producers sent them, before validation.

A message is either a :class:`RawBatch` envelope written by the ingestor (many
records per Kafka message, since stream processors pay per message, not per
byte) or a single :class:`RawObservation` written straight to the topic by a
Kafka-native producer. Types are lenient on purpose: the cleaner validates and
dead-letters what does not fit, record by record.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

TOPIC = "indicators.raw"


class RawObservation(BaseModel):
    """One commune-level value of one indicator, as sent."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    indicateur: str = Field(description="Indicator identifier, e.g. `population`.")
    commune: str = Field(description="Commune code (COG), any edition: `33063`, `2A004`, `1001`.")
    annee: int | str | None = Field(None, description="Year of the value.")
    date: str | None = Field(None, description="Date `dd/mm/YYYY` or ISO, when no year is given.")
    valeur: Decimal | str | None = Field(
        None, description='Number (`12.5`, `"12,5"`) or a secret/missing marker (`s`, `nd`).'
    )
    sous_champ: str | None = Field(
        None, description="Sub-field, such as an age band; `total` if absent."
    )
    libelle_sous_champ: str | None = None
    libelle_indicateur: str | None = None
    unite: str | None = None
    version: int | None = Field(
        None, description="Producer revision; the highest wins. Default: the time it was accepted."
    )


class RawBatchHeader(BaseModel):
    """The envelope without its records (the cleaner checks those one by one)."""

    batch_id: str
    source: str = Field(description="Where the batch came from: `http`, `file:<name>`, ...")
    producer: str | None = Field(None, description="The authenticated producer, if any.")
    received_at: datetime = Field(description="When accepted; the records' default version.")


class RawBatch(RawBatchHeader):
    """Envelope the ingestor writes: records accepted together."""

    records: list[dict[str, Any]]


def describe(exc: ValidationError) -> str:
    """Validation errors without the offending input, which may be personal."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False)
    )


def schema_problem(record: dict[str, Any]) -> str | None:
    """Why ``record`` is not a RawObservation (PII-safe), or None."""
    try:
        RawObservation.model_validate(record)
    except ValidationError as exc:
        return describe(exc)
    return None
