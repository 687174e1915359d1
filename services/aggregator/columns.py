"""What the aggregator reads from the bulk lane (pure): a clean bulk message
decoded and checked a column at a time, and cut into the rows a set can
take (``bulk.py``) and those the record-by-record store takes.

Anything may be written on ``indicators.clean.bulk``, not only by the
cleaner. A row whose columns are not plainly within the clean bounds is
read as a ``CleanObservation``, record by record, exactly as the live lane
reads one: it is aggregated the same way, or dead-lettered with the same
reason (intake.py).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from schemas import bulk, limits
from schemas.clean import CleanObservation, record_id
from schemas.deadletter import DeadLetter
from schemas.raw import describe
from services.aggregator.bulk import FAST_KINDS
from services.aggregator.intake import letter, message_id
from services.aggregator.rules import AggregationRules

# Decimal text as Postgres prints a NUMERIC (what the cleaner writes): read
# back, a commune's message is this very text.
CANONICAL = r"^-?(0|[1-9][0-9]{0,39})(\.[0-9]{1,40})?$"
NEGATIVE_ZERO = r"^-0(\.0*)?$"


@dataclass
class BulkRows:
    """A clean bulk message, read: its batch, the rows the columns carry
    plainly (``table``, bulk.CLEAN_SCHEMA) and every other record, read one
    by one (``records``), and the dead letters of those that are none."""

    batch_id: str
    producer: str | None
    table: pa.Table
    records: list[CleanObservation] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def read(value: bytes) -> BulkRows:
    """Never raises: bytes that are no Arrow stream are one dead letter, a
    batch without a valid header one dead letter per row (as the cleaner)."""
    named = message_id(value)
    empty = bulk.CLEAN_SCHEMA.empty_table()
    try:
        table = bulk.read_table(value)
    except bulk.NotABatch as exc:
        detail = f"not a clean bulk batch: {exc}"[:300]
        return BulkRows(named, None, empty, dead=[letter(named, "invalid_message", detail)])
    try:
        header = bulk.header_of(table, bulk.CleanHeader)
    except bulk.NotABatch as exc:
        detail = f"not a clean bulk batch: {exc}"[:300]
        dead = [
            letter(record_id(named, i), "invalid_message", detail) for i in range(table.num_rows)
        ] or [letter(named, "invalid_message", detail)]
        return BulkRows(named, None, empty, dead=dead)
    rows = BulkRows(header.batch_id, header.producer, bulk.CLEAN_SCHEMA.empty_table())
    if table.schema.remove_metadata() != bulk.CLEAN_SCHEMA:
        one_by_one(rows, table, list(range(table.num_rows)))
        return rows
    table = table.replace_schema_metadata(None)
    plain = plainly_clean(table)
    doubtful = pc.indices_nonzero(pc.invert(plain)).to_pylist()
    rows.table = table.filter(plain) if doubtful else table
    one_by_one(rows, table, doubtful)
    return rows


def plainly_clean(table: pa.Table) -> pa.Array:
    """Rows surely within CleanObservation's bounds, their valeur canonical."""

    def text(name: str, limit: int, required: bool = False) -> pa.Array:
        return bulk.within(table.column(name), limit, if_null=not required)

    ok = pc.and_(text("indicateur", limits.MAX_KEY_CHARS, True), text("sous_champ", 100, True))
    for name in ("commune", "commune_source"):
        ok = pc.and_(ok, text(name, limits.MAX_COMMUNE_CHARS, True))
    for name in ("marqueur", "unite", "libelle_indicateur", "libelle_sous_champ"):
        ok = pc.and_(ok, text(name, limits.MAX_TEXT_CHARS))
    ok = pc.and_(ok, text("pii_key_id", limits.MAX_KEY_CHARS))
    annee = table.column("annee")
    ok = pc.and_(
        ok, pc.and_(pc.greater_equal(annee, limits.YEAR_MIN), pc.less_equal(annee, limits.YEAR_MAX))
    )
    valeur = table.column("valeur")
    canonical = pc.and_(
        pc.match_substring_regex(valeur, CANONICAL),
        pc.invert(pc.match_substring_regex(valeur, NEGATIVE_ZERO)),
    )
    ok = pc.and_(ok, pc.fill_null(canonical, True))
    ok = pc.and_(ok, pc.greater_equal(table.column("position"), 0))
    # A value published for a territory above the commune: the live store's.
    ok = pc.and_(ok, pc.equal(table.column("niveau"), "commune"))
    # Personal hashes: read one by one (rare in indicator data).
    return pc.fill_null(pc.and_(ok, pc.is_null(table.column("pii"))), False)


def one_by_one(rows: BulkRows, table: pa.Table, positions: list[int]) -> None:
    """Rows ``positions`` of ``table`` read as the live lane reads a record."""
    if not positions:
        return
    for row in bulk.records(table, positions):
        position = row.pop("position", None)
        row.pop("place", None)
        name = (
            record_id(rows.batch_id, position)
            if isinstance(position, int) and position >= 0
            else f"{rows.batch_id}:?"
        )
        try:
            if isinstance(row.get("pii"), str):
                row["pii"] = json.loads(row["pii"])
            elif row.get("pii") is None:  # no personal field: none hashed
                row.pop("pii", None)
            rows.records.append(
                CleanObservation.model_validate(
                    {**row, "record_id": name, "producteur": rows.producer}
                )
            )
        except (ValidationError, ValueError, RecursionError) as exc:
            detail = describe(exc) if isinstance(exc, ValidationError) else type(exc).__name__
            rows.dead.append(letter(name, "invalid_schema", detail))


def split(
    table: pa.Table, rules: AggregationRules, placed: Callable[[pa.Array], pa.Array]
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(rows a set can take, rows for the record-by-record store, rows whose
    commune is not in the referential). A set takes a row of a rule that
    needs no partner, alone with its observation key and its commune in the
    message, of an (indicator, sub-field, year) with one unit at most, sent
    under its commune's own code."""
    known = placed(table.column("commune"))
    unplaced = table.filter(pc.invert(known))
    table = table.filter(known) if unplaced.num_rows else table
    if table.num_rows == 0:
        return table, table, unplaced
    encoded = bulk.whole(table.column("indicateur")).dictionary_encode()
    simple = pa.array(
        [
            rules.kind(i) in FAST_KINDS and i not in rules.pairs_by_member
            for i in encoded.dictionary.to_pylist()
        ]
    ).take(encoded.indices)
    fast = pc.and_(simple, alone(table, ["indicateur", "sous_champ", "annee", "commune_source"]))
    fast = pc.and_(fast, alone(table, ["indicateur", "sous_champ", "annee", "commune"]))
    fast = pc.and_(fast, one_unit(table))
    # Decided over every row above (a group's units, a commune's rows), then
    # a code sent that is not the commune itself left to the store, which
    # places it by its own edition (a cleaner of another release may not).
    fast = pc.and_(fast, pc.equal(table.column("commune"), table.column("commune_source")))
    return table.filter(fast), table.filter(pc.invert(fast)), unplaced


def alone(table: pa.Table, keys: list[str]) -> pa.Array:
    """Rows whose ``keys`` no other row of the table has."""
    joined = pc.binary_join_element_wise(
        *(pc.cast(table.column(k), pa.string()) for k in keys), "\x1f"
    )
    if pc.count_distinct(joined).as_py() == table.num_rows:  # the common case: all
        return pa.array([True] * table.num_rows)
    encoded = bulk.whole(joined).dictionary_encode()
    counts = Counter(encoded.indices.to_pylist())
    return pa.array([counts[i] == 1 for i in encoded.indices.to_pylist()])


def one_unit(table: pa.Table) -> pa.Array:
    """Rows of an (indicator, sub-field, year) whose rows give one unit or
    none: then any order of the records gives its territories that unit."""
    ok = [True] * table.num_rows
    unite = bulk.whole(table.column("unite"))
    for _, rows in bulk.groups(table, ["indicateur", "sous_champ", "annee"]):
        if pc.count_distinct(unite.take(rows)).as_py() > 1:
            for i in rows.to_pylist():
                ok[i] = False
    return pa.array(ok)


def observations(table: pa.Table, batch_id: str, producer: str | None) -> list[CleanObservation]:
    """Rows as the live lane's records, for the record-by-record store."""
    found: list[CleanObservation] = []
    for row in table.to_pylist():
        position = row.pop("position")
        row.pop("place")
        row["pii"] = json.loads(row["pii"]) if row["pii"] else {}
        found.append(
            CleanObservation.model_validate(
                {**row, "record_id": record_id(batch_id, position), "producteur": producer}
            )
        )
    return found
