"""``indicators.clean``: validated, normalized observations without clear PII."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from schemas.aggregates import Niveau
from schemas.limits import (
    MAX_FIELDS,
    MAX_RECORD_ID_CHARS,
    Bigint,
    CommuneCode,
    KeyText,
    Text,
    Year,
    bounded,
)

TOPIC = "indicators.clean"


RecordId = Annotated[str, bounded(MAX_RECORD_ID_CHARS)]
# What ``pii`` may hold: keyed hashes only. Anyone may write to the clean
# topics, not only the cleaner: a clear name there would be stored (#30).
PiiHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class CleanObservation(BaseModel):
    """One normalized commune-level value, keyed to the current commune.

    Its text and numbers keep the raw record's bounds (schemas/limits.py): a
    record written on this topic by anyone but the cleaner, with a NUL, a lone
    surrogate, a year out of range or an integer beyond a bigint, is refused
    at decoding as ``invalid_schema``, not by Postgres."""

    # Bounded here, not only in the cleaner: an integer past a float once
    # stopped the aggregator at every restart (its freshness reads ``recu``).

    record_id: RecordId = Field(description="`<batch_id>:<index:06d>`, stable across replays.")
    indicateur: KeyText
    sous_champ: KeyText = "total"
    annee: Year
    niveau: Niveau = Field(
        "commune",
        description="`commune`, or the level of a territory whose value is published as is "
        "(`epci`, `departement`, `region`, `france`): then `commune` and `commune_source` "
        "hold that territory's code.",
    )
    commune: CommuneCode = Field(description="Current commune code (5 characters).")
    commune_source: CommuneCode = Field(
        description="Code as sent, normalized (an older code if merged)."
    )
    valeur: Decimal | None = Field(description="None when the cell is secret or missing.")
    marqueur: Text | None = Field(None, description="`s`, `nd`, ... when valeur is None.")
    unite: Text | None = None
    libelle_indicateur: Text | None = None
    libelle_sous_champ: Text | None = None
    version: Bigint = Field(description="The producer's version, or the acceptance time (µs).")
    version_explicite: bool = Field(False, description="True when the producer gave the version.")
    recu: Bigint = Field(0, description="When the ingestor accepted it (µs since epoch).")
    pii: dict[KeyText, PiiHash] = Field(
        default_factory=dict,
        max_length=MAX_FIELDS,
        description="HMAC-SHA-256 (64 hex digits) of each personal field.",
    )
    pii_key_id: KeyText | None = Field(None, description="Which key produced the hashes.")
    producteur: KeyText | None = Field(None, description="The authenticated producer, if any.")

    @field_validator("valeur", mode="before")
    @classmethod
    def _a_number(cls, value: object) -> object:
        """From JSON, pydantic reads a three-item array as a Decimal's
        (sign, digits, exponent) tuple: ``[0, [1], 0]`` became 1 and
        ``[null, null, null]`` raised a bare ValueError that stopped the
        aggregator on the message. A value is a number or its text."""
        if value is not None and not isinstance(value, str | int | float | Decimal):
            raise ValueError("a number or its decimal text")
        if isinstance(value, bool):
            raise ValueError("a boolean is not a value")
        return value

    @property
    def published(self) -> bool:
        """A value published for a territory above the commune."""
        return self.niveau != "commune"

    @property
    def key(self) -> tuple[str, str, int, str]:
        """The observation's identity: a newer version of the same key replaces it."""
        return (self.indicateur, self.sous_champ, self.annee, self.commune_source)

    @property
    def order(self) -> tuple[bool, int, int, str]:
        """Of two observations of one key (from one producer), the higher wins:
        an explicit version above any implicit one, then the higher version,
        then the later accepted, then the later record (docs/producers.md, "Versions")."""
        return (self.version_explicite, self.version, self.recu, self.record_id)


def place_hash(sous_champ: str, annee: int, commune: str) -> int:
    """The hash of a record's place: its sub-field, year and current commune
    (every indicator of that commune there, pair partners included). The
    cleaner sends the record to partition ``place_hash % partitions`` of this
    topic, and the aggregator locks bucket ``place_hash % LOCK_BUCKETS``
    (services/aggregator/store.py): when the partition count divides
    LOCK_BUCKETS, aggregators on different partitions never wait for each
    other's locks. Correctness never depends on it, only speed."""
    return zlib.crc32(f"{sous_champ}|{annee}|{commune}".encode())


def record_id(batch_id: str, index: int) -> str:
    """Zero-padded, so that ids of one batch sort in the records' order."""
    return f"{batch_id}:{index:06d}"


def batch_position(record_id: str) -> tuple[str, int] | None:
    """(batch id, 1-based position in the batch) of an id made by
    :func:`record_id`; None for the ids of whole messages."""
    batch_id, _, index = record_id.rpartition(":")
    if not batch_id or len(index) != 6 or not index.isascii() or not index.isdigit():
        return None
    return batch_id, int(index) + 1


class CleanBatch(BaseModel):
    batch_id: str
    records: list[CleanObservation]


def encode_batches(
    batch_id: str, records: Iterable[bytes], *, max_records: int, max_bytes: int
) -> Iterator[tuple[str, bytes]]:
    """``CleanBatch`` messages (id, JSON) from records already encoded one by one.

    Each holds at most ``max_records`` records and, unless one record alone is
    larger, ``max_bytes`` bytes: the aggregator's transactions and the Kafka
    messages stay bounded whatever the size of the request they came from.
    """
    part = 0
    chunk: list[bytes] = []
    size = _envelope_bytes(f"{batch_id}/{part}")
    for record in records:
        added = len(record) + bool(chunk)  # with the comma before it
        if chunk and (len(chunk) >= max_records or size + added > max_bytes):
            yield _batch(f"{batch_id}/{part}", chunk)
            part, chunk = part + 1, []
            size = _envelope_bytes(f"{batch_id}/{part}")
            added = len(record)
        chunk.append(record)
        size += added
    if chunk:
        yield _batch(f"{batch_id}/{part}", chunk)


def _envelope_bytes(batch_id: str) -> int:
    return len(_batch(batch_id, [])[1])


def _batch(batch_id: str, records: list[bytes]) -> tuple[str, bytes]:
    head = b'{"batch_id":' + json.dumps(batch_id).encode() + b',"records":['
    return batch_id, head + b",".join(records) + b"]}"
