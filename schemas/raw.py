"""``indicators.raw``: observations as producers sent them, before validation.

A message is either a :class:`RawBatch` envelope written by the ingestor (many
records per Kafka message, since stream processors pay per message, not per
byte) or a single :class:`RawObservation` written straight to the topic by a
Kafka-native producer. Types are lenient on purpose: the cleaner validates and
dead-letters what does not fit, record by record.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas import limits
from schemas.limits import CommuneCode, KeyText, Text, bounded

TOPIC = "indicators.raw"

# An extra field: text, a finite number, a boolean or null; nothing nested.
Extra = Text | int | Annotated[float, Field(allow_inf_nan=False)] | bool | None


# The fields RawObservation reads as integers first, within these bounds
# (else ``annee`` as text): the bulk lane writes them the same way.
INTEGER_BOUNDS = {"annee": (0, 9999), "version": (0, limits.MAX_VERSION)}
YEAR_LOW, YEAR_HIGH = INTEGER_BOUNDS["annee"]
VERSION_LOW, VERSION_HIGH = INTEGER_BOUNDS["version"]
RawYear = Annotated[int, Field(ge=YEAR_LOW, le=YEAR_HIGH)] | Annotated[str, bounded(16)]


class RawObservation(BaseModel):
    """One commune-level value of one indicator, as sent. The commune is
    named by its code or, failing that, by its name (``libelle_territoire``)."""

    model_config = ConfigDict(
        extra="allow",
        coerce_numbers_to_str=True,
        json_schema_extra={
            "anyOf": [
                {"required": ["commune"]},
                {"required": ["libelle_territoire"]},
                {"required": ["code"]},
            ]
        },
    )

    indicateur: KeyText = Field(description="Indicator identifier, e.g. `population`.")
    commune: CommuneCode | None = Field(
        None,
        description="Commune code (COG), any edition: `33063`, `2A004`, `1001`. "
        "Required unless `libelle_territoire` names the commune.",
    )
    libelle_territoire: Text | None = Field(
        None,
        description="The commune's name (`Saint-Émilion`, `Rochelle (La)`), read when no "
        "code is given: resolved when one commune bears it (in the record's `departement`, "
        "when given), else refused naming the candidates.",
    )
    niveau: Annotated[str, bounded(32)] | None = Field(
        None,
        description="The territory's level when the value is published for a territory above "
        "the commune: `epci`, `departement`, `region` or `france` (default `commune`); its "
        "code in `code` (or `commune`), or its name in `libelle_territoire`. Served as "
        'published (`"origine": "publiee"`), never added into anything.',
    )
    code: Annotated[str, bounded(16)] | None = Field(
        None, description="The territory's code at its `niveau`: `200066793`, `33`, `75`, `FR`."
    )
    annee: Annotated[int, Field(ge=YEAR_LOW, le=YEAR_HIGH)] | Annotated[str, bounded(16)] | None = (
        Field(None, description="Year of the value.")
    )
    date: Annotated[str, bounded(32)] | None = Field(
        None, description="Date `dd/mm/YYYY` or ISO, when no year is given."
    )
    valeur: Decimal | Annotated[str, bounded(limits.MAX_VALUE_CHARS)] | None = Field(
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
    version: Annotated[int, Field(ge=VERSION_LOW, le=VERSION_HIGH)] | None = Field(
        None,
        description="Producer revision: see the version rule in docs/producers.md. "
        "Default: the time it was accepted.",
    )

    # Undeclared fields are kept (the cleaner hashes the personal ones) but
    # bounded like the declared ones.
    __pydantic_extra__: dict[str, Extra] = Field(init=False)

    @model_validator(mode="before")
    @classmethod
    def _bounded_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if len(data) > limits.MAX_FIELDS:
            raise ValueError(f"more than {limits.MAX_FIELDS} fields")
        for name, value in data.items():
            if name not in DECLARED:
                try:
                    limits.check_text(str(name), limits.MAX_FIELD_NAME_CHARS)
                except limits.OutOfBounds as exc:
                    raise ValueError(f"a field name {exc}") from None
                if isinstance(value, float) and not math.isfinite(value):
                    # Else text would take it (coerce_numbers_to_str) as "nan".
                    raise ValueError(f"{name}: NaN and Infinity are not numbers")
            elif isinstance(value, float) and not math.isfinite(value) and name != "valeur":
                raise ValueError(f"{name}: NaN and Infinity are not numbers")
        return data

    @model_validator(mode="after")
    def _placed(self) -> RawObservation:
        if self.commune is None and self.libelle_territoire is None and self.code is None:
            raise ValueError(
                "a territory is required: a commune code (commune), a code (code, with its "
                "niveau) or a name (libelle_territoire)"
            )
        return self

    @field_validator("indicateur")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.split():  # blank once the cleaner folds its spaces
            raise ValueError("is empty")
        return value

    @field_validator("valeur", mode="before")
    @classmethod
    def _bounded_value(cls, value: Any) -> Any:
        """A number within bounds, as a Decimal (text is parsed here once, the
        cleaner reads the result); other text (markers, "NaN") stays text."""
        if isinstance(value, bool):
            raise ValueError("a boolean is not a value")
        if isinstance(value, float):
            return limits.check_number(Decimal(repr(value)))
        if isinstance(value, int | Decimal):
            return limits.check_number(Decimal(value))
        if isinstance(value, str):
            number = limits.number_from_text(value)  # out of bounds: raises
            if number is not None and number.is_finite():
                return number
        return value


DECLARED = frozenset(RawObservation.model_fields)


def indicator_name(text: object) -> str:
    """An indicator's name as it is stored: its spaces folded (the cleaner
    stores it so, the ingestor checks a producer's scope by it)."""
    return " ".join(str(text).split())


class RawBatchHeader(BaseModel):
    """The envelope without its records (the cleaner checks those one by one)."""

    batch_id: KeyText
    source: Text = Field(description="Where the batch came from: `http`, `file:<name>`, ...")
    producer: KeyText | None = Field(None, description="The authenticated producer, if any.")
    received_at: datetime = Field(description="When accepted; the records' default version.")


class RawBatch(RawBatchHeader):
    """Envelope the ingestor writes: records accepted together."""

    records: list[dict[str, Any]]


# Plainer words for the errors the bounds raise (the only pattern is NO_NUL).
MESSAGES = {
    "string_pattern_mismatch": "contains a NUL character",
    "string_unicode": "is not valid Unicode (a lone surrogate)",
}


EXTRA_RULE = (
    f"an extra field must be text (at most {limits.MAX_TEXT_CHARS} characters, no NUL), "
    "a finite number, a boolean or null"
)


def describe(exc: ValidationError) -> str:
    """Validation errors without the offending input, which may be personal:
    one line per field, its union's alternatives folded into one."""
    by_field: dict[str, list[str]] = {}
    for e in exc.errors(include_input=False, include_url=False):
        field = str(e["loc"][0]) if e["loc"] else "record"
        messages = by_field.setdefault(field, [])
        message = MESSAGES.get(e["type"], e["msg"]).removeprefix("Value error, ")
        if message not in messages:
            messages.append(message)
    return "; ".join(
        f"{field}: " + (EXTRA_RULE if field not in DECLARED and len(m) > 1 else " or ".join(m))
        for field, m in by_field.items()
    )


def schema_problem(record: dict[str, Any]) -> str | None:
    """Why ``record`` is not a RawObservation (PII-safe), or None."""
    try:
        RawObservation.model_validate(record)
    except ValidationError as exc:
        return describe(exc)
    return None
