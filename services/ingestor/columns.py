"""Records as the bulk lane carries them: text columns, one row per record
(schemas/bulk.py), and the edge's bounds checked a column at a time (pure).

A record becomes text as the live lane would read it: a number as its
text, a year or version given as a boolean or a whole float as the integer
RawObservation makes of it, a field present with null as an empty text (the
cleaner reads both alike, and a personal field present, even empty, still
names its key). ``tests/unit/test_ingestor_columns.py`` checks that a
record the edge accepts is cleaned to the same result by either lane.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from common.pii import PREFIX, PiiHasher
from schemas import bulk, limits
from schemas.raw import DECLARED, schema_problem
from schemas.raw import INTEGER_BOUNDS as INTEGERS

# A value the bounds surely accept: a plain decimal number, or short text
# without a digit (a marker such as `s` or `nd`: it cannot be a number out
# of bounds).
PLAIN = (
    rf"^[+-]?[0-9]{{1,{limits.MAX_INTEGER_DIGITS}}}(?:[.,][0-9]{{0,{limits.MAX_DECIMAL_PLACES}}})?$"
)
NO_DIGIT = rf"^[^0-9]{{0,{limits.MAX_VALUE_CHARS}}}$"
VERSION = r"^[0-9]{1,15}$"
BOUNDS = {
    "indicateur": limits.MAX_KEY_CHARS,
    "commune": limits.MAX_COMMUNE_CHARS,
    "annee": 16,
    "date": 32,
    "sous_champ": limits.MAX_KEY_CHARS,
    "unite": limits.MAX_TEXT_CHARS,
    "libelle_indicateur": limits.MAX_TEXT_CHARS,
    "libelle_sous_champ": limits.MAX_TEXT_CHARS,
    "niveau": 32,
    "code": 16,
}


def as_text(name: str, value: Any) -> str | None:
    """``value`` of field ``name`` as the bulk lane's text (None: absent)."""
    if value is None:
        return None if name == "version" else ""
    if isinstance(value, str):
        return value
    if name in INTEGERS and isinstance(value, bool):
        return str(int(value))
    if name in INTEGERS and isinstance(value, float) and value.is_integer():
        low, high = INTEGERS[name]
        # The live lane reads it as an integer within the field's bounds,
        # else as its text (RawObservation coerces numbers to text): so does
        # this lane, and both refuse it for the same reason.
        return str(int(value)) if low <= value <= high else str(value)
    if isinstance(value, float):  # as the live lane reads it from JSON: a Decimal
        return str(Decimal(repr(value)))
    return str(value)


def representable(record: dict[str, Any]) -> bool:
    """Whether the bulk lane carries ``record`` unchanged in meaning: scalar
    values only (nested ones never pass the edge anyway)."""
    return all(isinstance(v, str | int | float | Decimal | type(None)) for v in record.values())


def table_of(records: Sequence[dict[str, Any]]) -> pa.Table:
    """The records as text columns, in the order their fields first appear."""
    names = list(dict.fromkeys(name for record in records for name in record))
    return pa.table(
        {
            name: pa.array(
                [as_text(name, r[name]) if name in r else None for r in records], pa.string()
            )
            for name in names
        }
    )


def surely_accepted(table: pa.Table) -> pa.Array:
    """Rows RawObservation surely accepts (``schema_problem`` is None), by
    their columns; a row marked false may still pass, checked alone."""
    rows = table.num_rows
    names = table.column_names
    if len(names) > limits.MAX_FIELDS or not all(
        name in DECLARED or (len(name) <= limits.MAX_FIELD_NAME_CHARS and "\x00" not in name)
        for name in names
    ):
        return pa.array([False] * rows, pa.bool_())
    ok = pa.array([True] * rows, pa.bool_())
    for name in names:
        column = table.column(name).combine_chunks()
        for check in _checks(name):
            ok = pc.and_(ok, check(column))
    if "indicateur" not in names:
        return pa.array([False] * rows, pa.bool_())
    ok = pc.and_(ok, pc.is_valid(table.column("indicateur").combine_chunks()))
    # The territory by a commune code, a code at its level, or its name.
    placed = pa.array([False] * rows, pa.bool_())
    for name in ("commune", "code", "libelle_territoire"):
        if name in names:
            placed = pc.or_(placed, pc.is_valid(table.column(name).combine_chunks()))
    return pc.and_(ok, placed)


def _checks(name: str) -> list[Callable[[pa.Array], pa.Array]]:
    if name == "indicateur":  # not blank: an ASCII letter or digit is surely not space
        return [
            lambda c: bulk.within(c, BOUNDS[name]),
            lambda c: pc.fill_null(pc.match_substring_regex(c, "[0-9A-Za-z]"), True),
        ]
    if name == "valeur":
        return [
            lambda c: bulk.within(c, limits.MAX_VALUE_CHARS),
            lambda c: pc.fill_null(
                pc.or_(pc.match_substring_regex(c, PLAIN), pc.match_substring_regex(c, NO_DIGIT)),
                True,
            ),
        ]
    if name == "version":
        return [lambda c: pc.fill_null(pc.match_substring_regex(c, VERSION), True)]
    return [lambda c: bulk.within(c, BOUNDS.get(name, limits.MAX_TEXT_CHARS))]


def record_of(table: pa.Table, row: int) -> dict[str, Any]:
    """Row ``row`` as a record (its non-null cells)."""
    return {k: v for k, v in table.slice(row, 1).to_pylist()[0].items() if v is not None}


def check_rows(table: pa.Table) -> tuple[pa.Array, dict[int, str]]:
    """Which rows the edge accepts, and why each other one is refused: the
    columns' checks, then ``schema_problem`` for the rows they leave in doubt."""
    ok = surely_accepted(table)
    refused: dict[int, str] = {}
    doubtful = [i for i, fine in enumerate(ok.to_pylist()) if not fine]
    for i in doubtful:
        problem = schema_problem(record_of(table, i))
        if problem is not None:
            refused[i] = problem
    if not doubtful:
        return ok, refused
    return pa.array([i not in refused for i in range(table.num_rows)], pa.bool_()), refused


def hidden(table: pa.Table, hasher: PiiHasher) -> pa.Table:
    """``table`` with each personal field's text replaced by its keyed hash,
    as ``PiiHasher.hide`` does a record's: once per distinct value."""
    for name in table.column_names:
        if not hasher.is_personal(name):
            continue
        column = table.column(name).combine_chunks().dictionary_encode()
        texts = [v if v == "" else PREFIX + hasher.digest(v) for v in column.dictionary.to_pylist()]
        hashed = pa.array(texts, pa.string()).take(column.indices)
        table = table.set_column(table.column_names.index(name), name, hashed)
    return personal_values_hidden(table, hasher)


def personal_values_hidden(table: pa.Table, hasher: PiiHasher) -> pa.Table:
    """The ``valeur`` of rows whose indicator is named like a personal field,
    as keyed hashes (``PiiHasher.hash_fields``)."""
    if "indicateur" not in table.column_names or "valeur" not in table.column_names:
        return table
    names = table.column("indicateur").combine_chunks().dictionary_encode()
    personal = [hasher.is_personal(name) for name in names.dictionary.to_pylist()]
    if not any(personal):
        return table
    rows = pc.fill_null(pa.array(personal, pa.bool_()).take(names.indices), False).to_pylist()
    values = table.column("valeur").to_pylist()
    texts = [
        PREFIX + hasher.digest(v) if row and v not in (None, "") else v
        for v, row in zip(values, rows, strict=True)
    ]
    at = table.column_names.index("valeur")
    return table.set_column(at, "valeur", pa.array(texts, pa.string()))
