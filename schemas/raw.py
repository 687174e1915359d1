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
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas import limits

TOPIC = "indicators.raw"


def _bounded(limit: int) -> AfterValidator:
    def check(text: str) -> str:
        limits.check_text(text, limit)
        return text

    return AfterValidator(check)


KeyText = Annotated[str, _bounded(limits.MAX_KEY_CHARS)]
Text = Annotated[str, _bounded(limits.MAX_TEXT_CHARS)]


class RawObservation(BaseModel):
    """One commune-level value of one indicator, as sent."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    indicateur: KeyText = Field(description="Indicator identifier, e.g. `population`.")
    commune: Annotated[str, _bounded(limits.MAX_COMMUNE_CHARS)] = Field(
        description="Commune code (COG), any edition: `33063`, `2A004`, `1001`."
    )
    annee: Annotated[int, Field(ge=0, le=9999)] | Annotated[str, _bounded(16)] | None = Field(
        None, description="Year of the value."
    )
    date: Annotated[str, _bounded(32)] | None = Field(
        None, description="Date `dd/mm/YYYY` or ISO, when no year is given."
    )
    valeur: Decimal | str | None = Field(
        None,
        description='Number (`12.5`, `"12,5"`) or a secret/missing marker (`s`, `nd`); '
        f"below 10^{limits.MAX_INTEGER_DIGITS} in magnitude, "
        f"at most {limits.MAX_DECIMAL_PLACES} decimal places.",
    )
    sous_champ: KeyText | None = Field(
        None, description="Sub-field, such as an age band; `total` if absent."
    )
    libelle_sous_champ: Text | None = None
    libelle_indicateur: Text | None = None
    unite: Text | None = None
    version: Annotated[int, Field(ge=0, le=limits.MAX_VERSION)] | None = Field(
        None,
        description="Producer revision: see the version rule in the README. "
        "Default: the time it was accepted.",
    )

    @model_validator(mode="before")
    @classmethod
    def _bounded_record(cls, data: Any) -> Any:
        """Any field, declared or not: a bounded name and a bounded scalar value."""
        if not isinstance(data, dict):
            return data
        if len(data) > limits.MAX_FIELDS:
            raise ValueError(f"more than {limits.MAX_FIELDS} fields")
        for name, value in data.items():
            try:
                limits.check_text(str(name), limits.MAX_FIELD_NAME_CHARS)
                limits.check_scalar(value)
            except limits.OutOfBounds as exc:
                raise ValueError(f"field {_safe_name(name)}: {exc}") from None
        return data

    @field_validator("valeur", mode="before")
    @classmethod
    def _bounded_value(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a boolean is not a value")
        if isinstance(value, int | float | Decimal):
            limits.check_number(Decimal(str(value)) if isinstance(value, float) else Decimal(value))
        elif isinstance(value, str):
            number = limits.decimal_from_text(value)
            if number is not None and number.is_finite():  # "NaN" text: invalid_value later
                limits.check_number(number)
        return value


def _safe_name(name: object) -> str:
    """A field name fit to quote in an error (names are not personal data)."""
    text = str(name)
    if len(text) > limits.MAX_FIELD_NAME_CHARS or "\x00" in text:
        return "(a name out of bounds)"
    return repr(text.encode("utf-8", "replace").decode())


class RawBatchHeader(BaseModel):
    """The envelope without its records (the cleaner checks those one by one)."""

    batch_id: KeyText
    source: Text = Field(description="Where the batch came from: `http`, `file:<name>`, ...")
    producer: KeyText | None = Field(None, description="The authenticated producer, if any.")
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
