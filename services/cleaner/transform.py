"""Pure cleaning: one raw message in, clean observations and dead letters out.

No Kafka and no database here; the faust app in ``app.py`` feeds it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from common import referential
from common.errors import unexpected
from common.pii import PiiHasher
from common.referential import Referential, Unplaced, locate
from schemas import deadletter, limits
from schemas.catalogue import ADDITIVE, Catalogue
from schemas.clean import CleanObservation
from schemas.clean import record_id as clean_record_id
from schemas.deadletter import DeadLetter
from schemas.raw import RawBatchHeader, RawObservation, describe, indicator_name

STAGE = "cleaner"
# Secret or missing cells in French statistical files: missing, never zero.
MISSING_MARKERS = frozenset({"", "s", "nd", "na", "n/a", "nc", "secret", "-", "."})
KNOWN_FIELDS = frozenset(RawObservation.model_fields)


class RecordRefused(Exception):
    """A record the cleaner cannot accept: ``reason`` names the rule, the message says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Rules:
    """Everything cleaning depends on, built once per process."""

    ref: Referential
    hasher: PiiHasher
    catalogue: Catalogue
    accept_unknown: bool = False  # unknown indicators kept, as not aggregable
    # How far ahead of this cleaner's clock a message's acceptance time may
    # be (clocks differ a little): beyond, its implicit versions would beat
    # every later correction (a record stamped 2099 would freeze its value).
    clock_skew_micros: int = 300_000_000


@dataclass
class CleanResult:
    batch_id: str
    clean: list[CleanObservation] = field(default_factory=list)
    encoded: list[bytes] = field(default_factory=list)  # each clean record as JSON
    dead: list[DeadLetter] = field(default_factory=list)


@dataclass(frozen=True)
class MessageOrigin:
    """Where a Kafka message sits; names records that carry no envelope."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int


def micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def normalize_commune(code: str, ref: Referential) -> tuple[str, str]:
    """Return (code as sent, normalized; current commune code)."""
    try:
        return locate(code, ref)
    except Unplaced as exc:
        raise RecordRefused(exc.reason, str(exc)) from None


def place(raw: RawObservation, ref: Referential) -> tuple[str, str, str]:
    """(level; code as sent, normalized; current code) of a record's
    territory (``common.referential.place``: the ingestor reads it alike).
    A ``departement`` field narrows a commune's name."""
    departement = (raw.model_extra or {}).get("departement")
    try:
        return referential.place(
            ref,
            commune=raw.commune,
            code=raw.code,
            niveau=raw.niveau,
            label=raw.libelle_territoire,
            departement=None if departement is None else str(departement),
        )
    except Unplaced as exc:
        raise RecordRefused(exc.reason, str(exc)) from None


YEAR_TEXT = re.compile(r"^[0-9]{1,4}$")


def parse_year(annee: int | str | None, day: str | None) -> int:
    if annee not in (None, ""):
        text = str(annee).strip()
        if not YEAR_TEXT.match(text):
            raise RecordRefused("invalid_year", "not a year of four digits at most")
        year = int(text)
    elif day:
        year = _year_of_date(day.strip())
    else:
        raise RecordRefused("missing_year", "neither annee nor date given")
    if not limits.YEAR_MIN <= year <= limits.YEAR_MAX:
        raise RecordRefused("invalid_year", f"year out of range: {year}")
    return year


def _year_of_date(text: str) -> int:
    for fmt in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text[:10], fmt).year
        except ValueError:
            continue
    raise RecordRefused("invalid_date", "date is neither dd/mm/YYYY nor YYYY-MM-DD")


def parse_value(valeur: object) -> tuple[Decimal | None, str | None]:
    """Return (value, marker): a marker when the cell is secret or missing."""
    if valeur is None:
        return None, "vide"
    if isinstance(valeur, bool):
        raise RecordRefused("invalid_value", "a boolean is not a value")
    try:
        if isinstance(valeur, int | Decimal):
            number = Decimal(valeur)
        elif isinstance(valeur, float):
            number = Decimal(repr(valeur))
        else:
            text = str(valeur).strip()
            if text.casefold() in MISSING_MARKERS:
                return None, text.casefold() or "vide"
            parsed = limits.number_from_text(text)
            if parsed is None:
                raise RecordRefused("invalid_value", "not a number nor a secret/missing marker")
            if not parsed.is_finite():
                raise RecordRefused("invalid_value", "not a finite number")
            return parsed, None
        return limits.check_number(number), None
    except limits.OutOfBounds as exc:
        raise RecordRefused("invalid_value", str(exc)) from None


def _message_id(origin: MessageOrigin) -> str:
    return f"kafka:{origin.topic}:{origin.partition}:{origin.offset}"


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = " ".join(value.split())
    return stripped or None


def check_catalogue(
    indicateur: str,
    sous_champ: str,
    valeur: Decimal | None,
    commune_source: str,
    commune: str,
    rules: Rules,
) -> None:
    """Refuse what the catalogue says cannot be aggregated right."""
    indicator = rules.catalogue.get(indicateur)
    if indicator is None:
        if rules.accept_unknown:
            return
        raise RecordRefused("unknown_indicator", f"{indicateur!r} is not in the catalogue")
    if indicator.derived:
        raise RecordRefused(
            "derived_indicator",
            f"{indicateur} is computed from "
            f"{indicator.numerateur} / {indicator.denominateur}; send those",
        )
    if indicator.sous_champs and sous_champ not in indicator.sous_champs:
        known = ", ".join(sorted(indicator.sous_champs))
        raise RecordRefused(
            "unknown_sous_champ",
            f"{indicateur} has no sub-field {deadletter.kept(sous_champ)!r}; it has: {known}",
        )
    if valeur is not None and indicator.min is not None and valeur < indicator.min:
        raise RecordRefused("out_of_bounds", f"{valeur} is below the minimum {indicator.min}")
    if valeur is not None and indicator.max is not None and valeur > indicator.max:
        raise RecordRefused("out_of_bounds", f"{valeur} is above the maximum {indicator.max}")
    if commune_source != commune and indicator.agregation not in ADDITIVE:
        raise RecordRefused(
            "ambiguous_code",
            f"{commune_source} is now part of {commune}; a "
            f"{indicator.agregation} value cannot be combined across its parts",
        )


def refuse_before_reading(record: Any, received: int, rules: Rules, now: int | None) -> None:
    """What refuses a record whatever its fields hold: not an object, a
    message accepted in the future, an indicator named like a personal field."""
    if not isinstance(record, dict):
        raise RecordRefused(
            "invalid_schema", f"a record must be a JSON object, got {type(record).__name__}"
        )
    if now is not None and received - now > rules.clock_skew_micros:
        raise RecordRefused(
            "future_timestamp",
            f"accepted at {datetime.fromtimestamp(received / 1e6, UTC).isoformat()}, "
            f"{(received - now) / 1e6:.0f} s ahead of this cleaner's clock "
            f"(at most {rules.clock_skew_micros / 1e6:.0f} s allowed)",
        )
    if rules.hasher.is_personal(named := record.get("indicateur")):
        # A column "email" of a table read as a measure, say: its values are
        # personal data, never an indicator's (hashed: redact, PiiHasher).
        raise RecordRefused(
            "personal_field",
            f"indicator {named!r} is named like a personal field: its values are never kept",
        )


def clean_record(
    record: Any,
    *,
    record_id: str,
    received: int,
    rules: Rules,
    producer: str | None = None,
    now: int | None = None,
) -> CleanObservation:
    """``received``: when the record was accepted (µs), its implicit version;
    ``now``: this cleaner's clock (µs), which ``received`` may not pass by
    more than the skew allowed."""
    refuse_before_reading(record, received, rules, now)
    try:
        raw = RawObservation.model_validate(record)
    except ValidationError as exc:
        raise RecordRefused("invalid_schema", describe(exc)) from None
    indicateur = indicator_name(raw.indicateur)  # never blank (RawObservation)
    niveau, commune_source, commune = place(raw, rules.ref)
    valeur, marqueur = parse_value(raw.valeur)
    sous_champ = _text(raw.sous_champ) or "total"
    if (indicator := rules.catalogue.get(indicateur)) is not None:
        sous_champ = indicator.sous_champ_of(sous_champ)
    check_catalogue(indicateur, sous_champ, valeur, commune_source, commune, rules)
    hasher = rules.hasher
    return CleanObservation(
        record_id=record_id,
        indicateur=indicateur,
        sous_champ=sous_champ,
        annee=parse_year(raw.annee, raw.date),
        niveau=niveau,
        commune=commune,
        commune_source=commune_source,
        valeur=valeur,
        marqueur=marqueur,
        unite=_text(raw.unite),
        libelle_indicateur=_text(raw.libelle_indicateur),
        libelle_sous_champ=_text(raw.libelle_sous_champ),
        version=raw.version if raw.version is not None else received,
        version_explicite=raw.version is not None,
        recu=received,
        pii=hasher.hash_fields(record),
        pii_key_id=hasher.key_id if hasher.any_personal(record) else None,
        producteur=producer,
    )


def redact(record: Any, hasher: PiiHasher) -> dict[str, Any] | None:
    """What a dead letter may carry: known fields within bounds, personal
    fields hashed.

    Unknown fields are dropped: they might hold personal data nobody declared.
    A value out of bounds (too long, NUL, not Unicode) is replaced by the
    reason, so a dead letter is always small and always serializable.
    """
    if not isinstance(record, dict):
        return None
    kept: dict[str, Any] = {}
    for name, value in record.items():
        if name in KNOWN_FIELDS and not hasher.is_personal(name):
            kept[name] = deadletter.kept(value)
    try:
        hashes = hasher.hash_fields(record)  # valeur too, for a personal indicator
    except UnicodeEncodeError:
        hashes = {}
    if "valeur" not in hashes and hasher.is_personal(record.get("indicateur")):
        kept.pop("valeur", None)
    kept.update({k: f"hmac-sha256:{v}" for k, v in hashes.items()})
    return kept


def dead_letter(
    record_id: str, reason: str, detail: str, payload: dict[str, Any] | None, now: datetime
) -> DeadLetter:
    return DeadLetter(
        record_id=record_id, stage=STAGE, reason=reason, detail=detail, payload=payload, at=now
    )


class BadEnvelope(Exception):
    """An envelope whose header is not a RawBatchHeader: its records are
    dead-lettered one by one, for the header's sake."""

    def __init__(self, detail: str, records: list[Any]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.records = records


class RefusedUnread(Exception):
    """A message refused whole and unread (schemas/limits.py): one dead letter."""


def decode_message(value: bytes, origin: MessageOrigin) -> tuple[str, int, str | None, list[Any]]:
    """(batch_id, default version, producer, records) of an envelope or a bare record."""
    if limits.json_values_over(value):
        raise RefusedUnread(f"more than {limits.MAX_MESSAGE_VALUES:,} JSON values")
    document = json.loads(value, parse_float=Decimal)
    if isinstance(document, dict) and isinstance(document.get("records"), list):
        if len(document["records"]) > limits.MAX_MESSAGE_RECORDS:
            raise RefusedUnread(f"more than {limits.MAX_MESSAGE_RECORDS:,} records")
        try:
            header = RawBatchHeader.model_validate(document)
        except ValidationError as exc:
            detail = "envelope does not match RawBatchHeader: " + describe(exc)
            raise BadEnvelope(detail, document["records"]) from None
        return header.batch_id, micros(header.received_at), header.producer, document["records"]
    return _message_id(origin), origin.timestamp_ms * 1000, None, [document]


def clean_message(
    value: bytes,
    origin: MessageOrigin,
    rules: Rules,
    *,
    now: datetime | None = None,
) -> CleanResult:
    """Never raises: each record ends clean or dead-lettered, whatever its bytes."""
    now = now or datetime.now(UTC)
    message_id = _message_id(origin)
    result = CleanResult(batch_id=message_id)
    try:
        result.batch_id, received, producer, records = decode_message(value, origin)
    except BadEnvelope as bad:
        # Each record is accounted for, with its redacted payload; an empty
        # envelope is one letter, so that the message is.
        result.dead += [
            dead_letter(clean_record_id(message_id, i), "invalid_message", bad.detail, p, now)
            for i, p in enumerate(redact(r, rules.hasher) for r in bad.records)
        ] or [dead_letter(message_id, "invalid_message", bad.detail, None, now)]
        return result
    except RefusedUnread as exc:
        detail = f"{exc} in one message: refused unread"
        result.dead.append(dead_letter(message_id, "invalid_message", detail, None, now))
        return result
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, nested too deep
        detail = f"not a JSON document: {type(exc).__name__}: {str(exc)[:200]}"
        result.dead.append(dead_letter(message_id, "invalid_message", detail, None, now))
        return result
    except Exception as exc:
        detail = unexpected(exc, "decoding a message")
        result.dead.append(dead_letter(message_id, "internal_error", detail, None, now))
        return result
    for index, record in enumerate(records):
        record_id = clean_record_id(result.batch_id, index)
        try:
            observation = clean_record(
                record,
                record_id=record_id,
                received=received,
                rules=rules,
                producer=producer,
                now=micros(now),
            )
            encoded = observation.model_dump_json().encode()
        except RecordRefused as rejected:
            reason, detail = rejected.reason, rejected.detail
        except Exception as exc:  # a case nobody foresaw costs this record only
            reason, detail = "internal_error", unexpected(exc, "cleaning a record")
        else:
            result.clean.append(observation)
            result.encoded.append(encoded)
            continue
        result.dead.append(
            dead_letter(record_id, reason, detail, redact(record, rules.hasher), now)
        )
    return result
