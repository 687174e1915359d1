"""The bulk lane: ``indicators.raw.bulk`` and ``indicators.clean.bulk``.

Whole files and large HTTP requests travel here, apart from the live lane
(``indicators.raw`` and ``indicators.clean``), as columns: one Kafka message
is one Arrow IPC stream of thousands of records, with the batch's header in
the schema's metadata. The services then work a column at a time, and a
correction pushed by HTTP meanwhile never waits behind a file
(docs/architecture.md, "Two lanes").

- ``indicators.raw.bulk``: one row per raw record, every column text
  (``utf8``): the fields of :class:`schemas.raw.RawObservation` and any
  extra field; a null cell is an absent field. The header is a
  :class:`schemas.raw.RawBatchHeader`. Anything that writes such a message
  (any Arrow library, any language) is read like the ingestor's.
- ``indicators.clean.bulk``: the records the cleaner accepted, normalized
  as :class:`schemas.clean.CleanObservation` (``CLEAN_SCHEMA``), each named
  by its position in the raw batch (record id ``<batch id>:<position>``);
  the header is a :class:`CleanHeader`.

Values are exact: ``valeur`` is decimal text, as Postgres prints a NUMERIC
(no exponent, no sign on zero, the digits after the point as written).
"""

from __future__ import annotations

from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ValidationError

from schemas import limits
from schemas.limits import KeyText, Text

RAW_TOPIC = "indicators.raw.bulk"
CLEAN_TOPIC = "indicators.clean.bulk"
HEADER = b"itte"  # the key of the header in the schema's metadata

CLEAN_SCHEMA = pa.schema(
    [
        pa.field("position", pa.int32(), nullable=False),
        pa.field("indicateur", pa.string(), nullable=False),
        pa.field("sous_champ", pa.string(), nullable=False),
        pa.field("annee", pa.int16(), nullable=False),
        pa.field("commune", pa.string(), nullable=False),
        pa.field("commune_source", pa.string(), nullable=False),
        pa.field("valeur", pa.string()),
        pa.field("marqueur", pa.string()),
        pa.field("unite", pa.string()),
        pa.field("libelle_indicateur", pa.string()),
        pa.field("libelle_sous_champ", pa.string()),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("version_explicite", pa.bool_(), nullable=False),
        pa.field("recu", pa.int64(), nullable=False),
        pa.field("pii", pa.string()),  # a JSON object: field → HMAC-SHA-256 (hex)
        pa.field("pii_key_id", pa.string()),
        # schemas.clean.place_hash of (sous_champ, annee, commune): the
        # aggregator's lock bucket and the partition the cleaner chose.
        pa.field("place", pa.uint32(), nullable=False),
        # `commune`, or the level of a territory whose value is published as
        # is (schemas.clean.CleanObservation.niveau).
        pa.field("niveau", pa.string(), nullable=False),
    ]
)


class CleanHeader(BaseModel):
    batch_id: KeyText  # the raw batch's
    producer: KeyText | None = None
    source: Text | None = None


class NotABatch(ValueError):
    """Bytes that are not a bulk message: not Arrow IPC, or no valid header."""


H = TypeVar("H", bound=BaseModel)


def encode(table: pa.Table, header: BaseModel) -> bytes:
    """One message: ``table`` as an Arrow IPC stream, ``header`` in its metadata."""
    schema = table.schema.with_metadata({HEADER: header.model_dump_json().encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(table.replace_schema_metadata(schema.metadata))
    return bytes(sink.getvalue().to_pybytes())


def read_table(value: bytes) -> pa.Table:
    """The table of a message, fully validated (offsets, UTF-8): whatever its
    bytes, an error here is :class:`NotABatch`, never a crash later."""
    try:
        with pa.ipc.open_stream(pa.py_buffer(value)) as reader:
            table = reader.read_all()
        table.validate(full=True)
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise NotABatch(f"not an Arrow IPC stream: {str(exc)[:200]}") from None
    if table.num_rows > limits.MAX_MESSAGE_RECORDS:
        # Refused unread, as a JSON message of too many records (limits.py):
        # each row of a bad batch would otherwise become a dead letter.
        raise NotABatch(f"more than {limits.MAX_MESSAGE_RECORDS:,} rows in one message")
    return table


def header_of(table: pa.Table, model: type[H]) -> H:
    """The header kept in the table's metadata, as ``model``."""
    found = (table.schema.metadata or {}).get(HEADER)
    if found is None:
        raise NotABatch(f"no {HEADER.decode()!r} header in the schema's metadata")
    try:
        return model.model_validate_json(found)
    except ValidationError as exc:
        problem = f"the header is not a {model.__name__}: {exc.error_count()} error(s)"
        raise NotABatch(problem) from None


def within(column: pa.Array | pa.ChunkedArray, limit: int, *, if_null: bool = True) -> pa.Array:
    """Whether each text of ``column`` keeps the bounds of the contract: at
    most ``limit`` characters and no NUL (schemas/limits.py); ``if_null``
    for a missing value."""
    fits = pc.and_(
        pc.less_equal(pc.utf8_length(column), limit),
        pc.invert(pc.match_substring(column, "\x00")),
    )
    return pc.fill_null(fits, if_null)


def records(table: pa.Table, positions: list[int] | None = None) -> list[dict[str, Any]]:
    """The rows of ``table`` (those at ``positions``, else all) as dicts. A
    table of no column still has rows: each is then empty, never dropped
    (its ``to_pylist`` and ``take`` give none)."""
    if not table.num_columns:
        return [{} for _ in (range(table.num_rows) if positions is None else positions)]
    picked = table if positions is None else table.take(pa.array(positions, pa.int64()))
    return picked.to_pylist()


def whole(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One array of a column, whatever its chunks (a table read from a
    stream holds one per record batch)."""
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


class CodeIndex:
    """Where each of a list of codes stands: a column of codes looked up
    once per distinct code. (``pyarrow.compute.index_in`` hashes its whole
    value set again at every call: 3 ms for the 35,000 communes.)"""

    def __init__(self, codes: list[str]) -> None:
        self._position = {code: i for i, code in enumerate(codes)}

    def positions(self, column: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Each row's position in the codes (int32), null where absent."""
        encoded = whole(column).dictionary_encode()
        found = [self._position.get(code) for code in encoded.dictionary.to_pylist()]
        return pa.array(found, pa.int32()).take(encoded.indices)


def groups(table: pa.Table, keys: list[str]) -> list[tuple[tuple[object, ...], pa.Array]]:
    """Each distinct value of ``keys`` and the rows (indices) that have it.
    For the few groups of a bulk message (an indicator's year, say), without
    ``Table.group_by``, whose engine (Acero) costs a process 44 MB."""
    joined = pc.binary_join_element_wise(
        *(pc.cast(whole(table.column(k)), pa.string()) for k in keys), "\x1f"
    )
    encoded = joined.dictionary_encode()
    found = []
    for code, _ in enumerate(encoded.dictionary.to_pylist()):
        rows = pc.indices_nonzero(pc.equal(encoded.indices, code))
        first = table.slice(rows[0].as_py(), 1)
        found.append((tuple(first.column(k)[0].as_py() for k in keys), rows))
    return found
