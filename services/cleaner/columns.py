"""Cleaning a bulk message a column at a time, to the same result as
cleaning its records one by one (``transform.clean_record``).

Every rule is applied once per distinct value of a column, by the very
functions the live lane uses (a file repeats its indicators, years, units
and markers; a commune's normalization is kept from one message to the
next), or by a vectorized test that accepts only what those functions
surely accept (a plain decimal number). A record any of them does not
accept outright is cleaned alone by ``clean_record``: it ends clean or
dead-lettered with exactly the reason and detail the live lane gives.
``tests/unit/test_cleaner_columns.py`` holds the two ways equal over any
records.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from common.errors import unexpected
from common.referential import Unplaced, level_of
from schemas import bulk, limits
from schemas.catalogue import ADDITIVE
from schemas.clean import CleanObservation, place_hash
from schemas.clean import record_id as clean_record_id
from schemas.deadletter import DeadLetter
from schemas.raw import DECLARED, RawBatchHeader, RawObservation
from services.cleaner.transform import (
    MessageOrigin,
    RecordRefused,
    Rules,
    _text,
    clean_record,
    dead_letter,
    micros,
    normalize_commune,
    parse_value,
    parse_year,
    redact,
)

# A decimal number written plainly, within the bounds by its shape alone
# (schemas/limits.py PLAIN_NUMBER, with a decimal comma allowed).
PLAIN = (
    rf"^[+-]?[0-9]{{1,{limits.MAX_INTEGER_DIGITS}}}(?:[.,][0-9]{{0,{limits.MAX_DECIMAL_PLACES}}})?$"
)
VERSION = r"^[0-9]{1,15}$"  # below 2**53: RawObservation takes it as it is
COMMUNE_CACHE = 200_000  # normalized commune codes kept between messages
# How close to a catalogue bound a value compared as a float is checked
# exactly, by the live lane's code, instead.
NEAR_BOUND = 1e-6


def numeric_text(number: Decimal) -> str:
    """``number`` as Postgres prints a NUMERIC: no exponent, no sign on zero,
    the digits after the point kept."""
    return format(abs(number) if number == 0 else number, "f")


def canonical(plain: pa.Array) -> pa.Array:
    """:func:`numeric_text` of numbers matching :data:`PLAIN`, a column at a time."""
    text = pc.replace_substring(plain, ",", ".")
    text = pc.replace_substring_regex(text, r"^\+", "")
    text = pc.replace_substring_regex(text, r"^(-?)0+([0-9])", r"\1\2")
    text = pc.replace_substring_regex(text, r"\.$", "")
    return pc.replace_substring_regex(text, r"^-(0(?:\.0*)?)$", r"\1")


@dataclass
class Distinct:
    """A rule applied to each distinct value of a column: whether the value
    passes (``ok``) and what it becomes (``value``), row by row."""

    ok: pa.Array
    value: pa.Array


def by_distinct(
    column: pa.Array, rule: Callable[[str], tuple[bool, Any]], kind: pa.DataType
) -> Distinct:
    """``rule`` on each distinct non-null value of ``column``; null rows get
    ``ok`` null (the caller says what an absent field means)."""
    encoded = bulk.whole(column).dictionary_encode()
    results = [rule(v) for v in encoded.dictionary.to_pylist()]
    ok = pa.array([r[0] for r in results], pa.bool_())
    value = pa.array([r[1] if r[0] else None for r in results], kind)
    return Distinct(ok.take(encoded.indices), value.take(encoded.indices))


def within_bounds(value: str, limit: int) -> bool:
    return len(value) <= limit and "\x00" not in value


@dataclass
class BulkResult:
    batch_id: str
    producer: str | None
    table: pa.Table  # bulk.CLEAN_SCHEMA
    dead: list[DeadLetter] = field(default_factory=list)


def clean_bulk(
    value: bytes, origin: MessageOrigin, cleaner: ColumnCleaner, now: datetime
) -> BulkResult:
    """A message of ``indicators.raw.bulk``; never raises: bytes that are no
    Arrow stream are one dead letter, a batch without a valid header is one
    dead letter per record (as an envelope without one, transform.py)."""
    message_id = f"kafka:{origin.topic}:{origin.partition}:{origin.offset}"
    try:
        table = bulk.read_table(value)
    except bulk.NotABatch as exc:
        letter = dead_letter(message_id, "invalid_message", f"not a bulk batch: {exc}", None, now)
        return BulkResult(message_id, None, empty_clean(), [letter])
    try:
        header = bulk.header_of(table, RawBatchHeader)
    except bulk.NotABatch as exc:
        detail, hasher = f"not a bulk batch: {exc}", cleaner.rules.hasher
        rows = [{k: v for k, v in row.items() if v is not None} for row in bulk.records(table)]
        dead = [
            dead_letter(
                clean_record_id(message_id, i), "invalid_message", detail, redact(r, hasher), now
            )
            for i, r in enumerate(rows)
        ] or [dead_letter(message_id, "invalid_message", detail, None, now)]
        return BulkResult(message_id, None, empty_clean(), dead)
    return cleaner.clean(table, header, now)


class ColumnCleaner:
    """Cleans bulk messages with :class:`transform.Rules`; keeps each commune
    code's normalization from one message to the next."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._communes: dict[str, tuple[str, str] | None] = {}

    def clean(self, table: pa.Table, header: RawBatchHeader, now: datetime) -> BulkResult:
        """Never raises for a record's sake: each row ends clean or dead-lettered."""
        received = micros(header.received_at)
        rows = table.num_rows
        # A batch accepted in the future: every row to clean_record, which says so.
        ahead = received - micros(now) > self.rules.clock_skew_micros
        fast = self._fast_rows(table) if rows and not ahead else None
        if fast is None:  # every row by clean_record
            accepted = pa.array([False] * rows, pa.bool_())
            clean = None
        else:
            accepted = pc.fill_null(fast.ok, False)
            clean = self._columns(fast, accepted, received)
        slow = [i for i, ok in enumerate(accepted.to_pylist()) if not ok]
        result = BulkResult(header.batch_id, header.producer, empty_clean())
        cleaned: list[tuple[int, CleanObservation]] = []
        records = bulk.records(table, slow) if slow else []
        for position, row in zip(slow, records, strict=True):
            record = {k: v for k, v in row.items() if v is not None}
            record_id = clean_record_id(header.batch_id, position)
            try:
                cleaned.append(
                    (
                        position,
                        clean_record(
                            record,
                            record_id=record_id,
                            received=received,
                            rules=self.rules,
                            producer=header.producer,
                            now=micros(now),
                        ),
                    )
                )
                continue
            except RecordRefused as rejected:
                reason, detail = rejected.reason, rejected.detail
            except Exception as exc:  # a case nobody foresaw costs this record only
                reason, detail = "internal_error", unexpected(exc, "cleaning a record")
            result.dead.append(
                dead_letter(record_id, reason, detail, redact(record, self.rules.hasher), now)
            )
        parts = [t for t in (clean, observations_table(cleaned)) if t is not None and t.num_rows]
        if parts:
            merged = pa.concat_tables(parts)
            result.table = merged.take(pc.sort_indices(merged, [("position", "ascending")]))
        return result

    # What every rule says of every row: ``ok`` true only where the row is
    # surely accepted as computed; false or null sends it to clean_record.
    def _fast_rows(self, table: pa.Table) -> Fast | None:
        names = table.column_names
        if len(names) > limits.MAX_FIELDS or not all(_usable_name(n) for n in names):
            return None
        if len(set(names)) != len(names):  # a name twice: each row read as a record
            return None
        if not all(pa.types.is_string(t) or pa.types.is_null(t) for t in table.schema.types):
            return None
        column = {n: table.column(n).combine_chunks().cast(pa.string()) for n in names}
        nothing = pa.nulls(table.num_rows, pa.string())
        fast = Fast(table.num_rows)
        for name in names:
            if name not in DECLARED:  # an extra field: text within the bounds
                fast.require(bulk.within(column[name], limits.MAX_TEXT_CHARS))
        ind = by_distinct(column.get("indicateur", nothing), self._indicator, pa.string())
        fast.require(ind.ok)
        fast.indicateur = ind.value
        self._commune(fast, column.get("commune", nothing))
        self._sous_champ(fast, column.get("sous_champ", nothing))
        self._year(fast, column.get("annee", nothing), column.get("date", nothing))
        self._valeur(fast, column.get("valeur", nothing))
        for name in LABELS:
            label = by_distinct(column.get(name, nothing), _label, pa.string())
            fast.require(pc.fill_null(label.ok, True))
            fast.labels[name] = label.value
        # The commune's name: read only when no code is given (such rows are
        # in doubt: clean_record places them), bounded as any text.
        territory = by_distinct(column.get("libelle_territoire", nothing), _label, pa.string())
        fast.require(pc.fill_null(territory.ok, True))
        # A territory above the commune, or a code in `code`: clean_record places it.
        level = by_distinct(column.get("niveau", nothing), _commune_level, pa.string())
        fast.require(pc.fill_null(level.ok, True))
        fast.require(pc.is_null(column.get("code", nothing)))
        self._version(fast, column.get("version", nothing))
        self._pii(fast, column)
        self._merged_communes(fast)
        return fast

    def _indicator(self, value: str) -> tuple[bool, str | None]:
        if not within_bounds(value, limits.MAX_KEY_CHARS) or not value.split():
            return False, None
        name = " ".join(value.split())
        indicator = self.rules.catalogue.get(name)
        if indicator is None:
            return self.rules.accept_unknown, name
        return not indicator.derived, name

    def _commune(self, fast: Fast, raw: pa.Array) -> None:
        known = self._communes
        if len(known) > COMMUNE_CACHE:
            known.clear()

        def normalized(value: str) -> tuple[bool, tuple[str, str] | None]:
            if value not in known:
                try:
                    ok = within_bounds(value, limits.MAX_COMMUNE_CHARS)
                    known[value] = normalize_commune(value, self.rules.ref) if ok else None
                except RecordRefused:
                    known[value] = None
            found = known[value]
            return found is not None, found

        mapped = by_distinct(raw, normalized, pa.struct([("s", pa.string()), ("c", pa.string())]))
        fast.require(mapped.ok)
        fast.commune_source = pc.struct_field(mapped.value, 0)
        fast.commune = pc.struct_field(mapped.value, 1)

    def _sous_champ(self, fast: Fast, raw: pa.Array) -> None:
        def normalized(value: str) -> tuple[bool, str | None]:
            return within_bounds(value, limits.MAX_KEY_CHARS), _text(value) or "total"

        mapped = by_distinct(raw, normalized, pa.string())
        fast.require(pc.fill_null(mapped.ok, True))
        fast.sous_champ = pc.fill_null(mapped.value, "total")
        catalogue, accept_unknown = self.rules.catalogue, self.rules.accept_unknown
        personal = self.rules.hasher.is_personal

        def listed(pair: str) -> tuple[bool, bool]:
            indicateur, _, sous_champ = pair.partition("\x1f")
            if personal(indicateur):
                return False, True  # the live lane's code refuses it (personal_field)
            indicator = catalogue.get(indicateur)
            if indicator is None:
                return accept_unknown, True
            return not indicator.sous_champs or sous_champ in indicator.sous_champs, True

        pairs = pc.binary_join_element_wise(fast.indicateur, fast.sous_champ, "\x1f")
        fast.require(by_distinct(pairs, listed, pa.bool_()).ok)

    def _year(self, fast: Fast, annee: pa.Array, date: pa.Array) -> None:
        """parse_year: the year from ``annee`` when it is given, else from
        ``date``; -1 stands for "none" (clean_record then says why)."""

        def from_annee(value: str) -> tuple[bool, int | None]:
            if not within_bounds(value, 16):
                return False, None
            return (True, -1) if value == "" else _year_of(value, None)

        def from_date(value: str) -> tuple[bool, int | None]:
            # Its bounds hold whether it is read or not.
            return within_bounds(value, 32), _year_of(None, value)[1] or -1

        by_annee = by_distinct(annee, from_annee, pa.int32())
        by_date = by_distinct(date, from_date, pa.int32())
        fast.require(pc.fill_null(by_annee.ok, True))
        fast.require(pc.fill_null(by_date.ok, True))
        annee_year = pc.fill_null(by_annee.value, -1)
        year = pc.if_else(pc.equal(annee_year, -1), pc.fill_null(by_date.value, -1), annee_year)
        fast.require(pc.not_equal(year, -1))
        fast.annee = year

    def _valeur(self, fast: Fast, raw: pa.Array) -> None:
        plain = pc.fill_null(pc.match_substring_regex(raw, PLAIN), False)
        others = by_distinct(
            pc.if_else(plain, pa.scalar(None, pa.string()), raw),
            _value,
            pa.struct([("v", pa.string()), ("m", pa.string())]),
        )
        absent = pc.is_null(raw)
        fast.require(pc.or_(pc.or_(plain, absent), pc.fill_null(others.ok, False)))
        fast.valeur = pc.if_else(plain, canonical(raw), pc.struct_field(others.value, 0))
        marqueur = pc.if_else(plain, pa.scalar(None, pa.string()), pc.struct_field(others.value, 1))
        fast.marqueur = pc.if_else(absent, "vide", marqueur)
        self._catalogue_bounds(fast)

    def _merged_communes(self, fast: Fast) -> None:
        """A former code's value goes to its new commune only by a rule that
        adds up; otherwise clean_record refuses it (ambiguous_code)."""
        kinds = self.rules.catalogue.indicateurs

        def additive(name: str) -> tuple[bool, bool]:
            found = kinds.get(name)
            return True, (found.agregation if found else "non_agregeable") in ADDITIVE

        moved = pc.not_equal(fast.commune_source, fast.commune)
        adds_up = by_distinct(fast.indicateur, additive, pa.bool_()).value
        fast.require(pc.or_(pc.invert(moved), adds_up))

    def _catalogue_bounds(self, fast: Fast) -> None:
        """Rows of indicators with a minimum or a maximum: within, clearly,
        as floats; near a bound, or beyond, the live lane decides."""
        indicators = self.rules.catalogue.indicateurs
        if all(i.min is None and i.max is None for i in indicators.values()):
            return
        number = pc.cast(fast.valeur, pa.float64())

        def bound(side: str) -> Callable[[str], tuple[bool, float | None]]:
            def of(name: str) -> tuple[bool, float | None]:
                found = indicators.get(name)
                limit = None if found is None else getattr(found, side)
                return True, None if limit is None else float(limit)

            return of

        for side in ("min", "max"):
            limit = by_distinct(fast.indicateur, bound(side), pa.float64()).value
            room = pc.subtract(number, limit) if side == "min" else pc.subtract(limit, number)
            margin = pc.multiply(pc.max_element_wise(pc.abs(limit), 1.0), NEAR_BOUND)
            clear = pc.greater(room, margin)
            fast.require(pc.or_kleene(pc.or_kleene(pc.is_null(limit), pc.is_null(number)), clear))

    def _version(self, fast: Fast, raw: pa.Array) -> None:
        digits = pc.fill_null(pc.match_substring_regex(raw, VERSION), False)
        fast.require(pc.or_(digits, pc.is_null(raw)))
        fast.version = pc.cast(pc.if_else(digits, raw, None), pa.int64())

    def _pii(self, fast: Fast, column: dict[str, pa.Array]) -> None:
        hasher = self.rules.hasher
        present = [name for name in column if hasher.is_personal(name)]
        if not present:
            return

        def digest(value: str) -> tuple[bool, str | None]:
            return True, None if value == "" else hasher.digest(value)

        hashed = {name: by_distinct(column[name], digest, pa.string()).value for name in present}
        keyed = [pc.is_valid(column[name]) for name in present]
        any_key = keyed[0]
        for more in keyed[1:]:
            any_key = pc.or_(any_key, more)
        fast.pii_key_id = pc.if_else(any_key, hasher.key_id, None)
        lists = {name: hashed[name].to_pylist() for name in present}
        fast.pii = pa.array(
            [
                json.dumps(found)
                if (found := {n: lists[n][i] for n in present if lists[n][i]})
                else None
                for i in range(fast.rows)
            ],
            pa.string(),
        )

    def _columns(self, fast: Fast, accepted: pa.Array, received: int) -> pa.Table | None:
        """The rows ``fast`` accepted, as clean columns."""
        positions = pc.indices_nonzero(accepted)
        if len(positions) == 0:
            return None
        nothing = pa.nulls(fast.rows, pa.string())
        picked = {
            "indicateur": fast.indicateur,
            "sous_champ": fast.sous_champ,
            "annee": pc.cast(fast.annee, pa.int16()),
            "commune": fast.commune,
            "commune_source": fast.commune_source,
            "valeur": fast.valeur,
            "marqueur": fast.marqueur,
            **{n: fast.labels.get(n, nothing) for n in LABELS},
            "version": pc.fill_null(fast.version, received),
            "version_explicite": pc.is_valid(fast.version),
            "recu": pa.array([received] * fast.rows, pa.int64()),
            "pii": nothing if fast.pii is None else fast.pii,
            "pii_key_id": nothing if fast.pii_key_id is None else fast.pii_key_id,
        }
        columns = {"position": pc.cast(positions, pa.int32())}
        columns |= {name: values.take(positions) for name, values in picked.items()}
        columns["place"] = places(columns["sous_champ"], columns["annee"], columns["commune"])
        columns["niveau"] = pa.array(["commune"] * len(positions), pa.string())
        return pa.table(columns, schema=bulk.CLEAN_SCHEMA)


LABELS = ("unite", "libelle_indicateur", "libelle_sous_champ")


class Fast:
    """The clean columns of every row, and whether each row is surely clean."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.ok: pa.Array = pa.array([True] * rows, pa.bool_())
        nothing = pa.nulls(rows, pa.string())
        self.indicateur = self.sous_champ = self.commune = self.commune_source = nothing
        self.valeur = self.marqueur = nothing
        self.annee: pa.Array = pa.nulls(rows, pa.int32())
        self.version: pa.Array = pa.nulls(rows, pa.int64())
        self.labels: dict[str, pa.Array] = {}
        self.pii: pa.Array | None = None
        self.pii_key_id: pa.Array | None = None

    def require(self, condition: pa.Array) -> None:
        """Rows where ``condition`` is false or null are not surely clean."""
        self.ok = pc.and_kleene(self.ok, pc.fill_null(condition, False))


def _usable_name(name: str) -> bool:
    """A field name RawObservation takes (an extra one's bounds)."""
    return name in DECLARED or within_bounds(name, limits.MAX_FIELD_NAME_CHARS)


def _commune_level(value: str) -> tuple[bool, str | None]:
    try:
        return within_bounds(value, 32) and level_of(value) == "commune", None
    except Unplaced:
        return False, None


def _label(value: str) -> tuple[bool, str | None]:
    return within_bounds(value, limits.MAX_TEXT_CHARS), _text(value)


def _year_of(annee: str | None, date: str | None) -> tuple[bool, int | None]:
    try:
        return True, parse_year(annee, date)
    except RecordRefused:
        return False, None


def _value(value: str) -> tuple[bool, tuple[str | None, str | None] | None]:
    """A valeur that is not a plain number (a marker, an exponent, spaces):
    read as RawObservation and the live lane read it."""
    try:
        raw = RawObservation.model_validate({"indicateur": "v", "commune": "0", "valeur": value})
        number, marker = parse_value(raw.valeur)
    except (ValidationError, RecordRefused):
        return False, None
    return True, (None if number is None else numeric_text(number), marker)


def places(sous_champ: pa.Array, annee: pa.Array, commune: pa.Array) -> pa.Array:
    """schemas.clean.place_hash of each row."""
    keys = pc.binary_join_element_wise(sous_champ, pc.cast(annee, pa.string()), commune, "|")
    return pa.array(map(zlib.crc32, keys.cast(pa.binary()).to_pylist()), pa.uint32())


def empty_clean() -> pa.Table:
    return bulk.CLEAN_SCHEMA.empty_table()


def observations_table(cleaned: Iterable[tuple[int, CleanObservation]]) -> pa.Table | None:
    """Records the live lane's code cleaned, as clean columns."""
    rows = list(cleaned)
    if not rows:
        return None
    records = [o for _, o in rows]
    return pa.table(
        {
            "position": [p for p, _ in rows],
            "indicateur": [o.indicateur for o in records],
            "sous_champ": [o.sous_champ for o in records],
            "annee": [o.annee for o in records],
            "commune": [o.commune for o in records],
            "commune_source": [o.commune_source for o in records],
            "valeur": [None if o.valeur is None else numeric_text(o.valeur) for o in records],
            "marqueur": [o.marqueur for o in records],
            "unite": [o.unite for o in records],
            "libelle_indicateur": [o.libelle_indicateur for o in records],
            "libelle_sous_champ": [o.libelle_sous_champ for o in records],
            "version": [o.version for o in records],
            "version_explicite": [o.version_explicite for o in records],
            "recu": [o.recu for o in records],
            "pii": [json.dumps(o.pii) if o.pii else None for o in records],
            "pii_key_id": [o.pii_key_id for o in records],
            "place": [place_hash(o.sous_champ, o.annee, o.commune) for o in records],
            "niveau": [o.niveau for o in records],
        },
        schema=bulk.CLEAN_SCHEMA,
    )
