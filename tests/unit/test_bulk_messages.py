"""A bulk message costs only its own records, whatever its bytes: anything
written on the bulk topics, by anyone, is read without an exception, each
record clean or dead-lettered with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import bulk
from schemas.clean import CleanObservation
from schemas.deadletter import DeadLetter
from schemas.raw import RawBatchHeader
from services.aggregator import columns as aggregator_columns
from services.cleaner.columns import ColumnCleaner, clean_bulk, observations_table
from services.cleaner.transform import MessageOrigin
from tests.unit.test_cleaner_transform import RECEIVED, RULES

ORIGIN = MessageOrigin(bulk.RAW_TOPIC, 1, 9, 1_700_000_000_000)
NOW = datetime(2026, 12, 3, tzinfo=UTC)


def raw_message(rows: int = 3) -> bytes:
    table = pa.table(
        {
            "indicateur": ["population"] * rows,
            "commune": ["33063"] * rows,
            "annee": ["2024"] * rows,
            "valeur": [str(i) for i in range(rows)],
        }
    )
    header = RawBatchHeader(batch_id="b", source="t", producer=None, received_at=RECEIVED)
    return bulk.encode(table, header)


def clean_message(rows: int = 3) -> bytes:
    records = [
        CleanObservation(
            record_id=f"b:{i:06d}",
            indicateur="population",
            annee=2024,
            commune="33063",
            commune_source="33063",
            valeur=Decimal(i),
            version=1,
        )
        for i in range(rows)
    ]
    table = observations_table(enumerate(records))
    assert table is not None
    return bulk.encode(table, bulk.CleanHeader(batch_id="b"))


@st.composite
def mutated(draw: st.DrawFn, value: bytes) -> bytes:
    """``value`` with a few of its bytes changed."""
    changed = bytearray(value)
    for _ in range(draw(st.integers(1, 8))):
        changed[draw(st.integers(0, len(changed) - 1))] = draw(st.integers(0, 255))
    return bytes(changed)


def written(dead: list[DeadLetter]) -> None:
    for letter in dead:  # every letter can be sent and read back
        DeadLetter.model_validate_json(letter.model_dump_json())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000) | mutated(raw_message()))
def test_any_bytes_on_the_raw_bulk_topic_cost_only_themselves(value: bytes) -> None:
    result = clean_bulk(value, ORIGIN, ColumnCleaner(RULES), NOW)
    assert accounted(value, result.table.num_rows + len(result.dead))
    assert result.table.schema == bulk.CLEAN_SCHEMA
    written(result.dead)


def accounted(value: bytes, out: int) -> bool:
    """Whether what came out of a message accounts for it: each of its rows
    clean or dead-lettered; one dead letter for bytes that are no batch; for
    a batch of no row, nothing or one letter."""
    try:
        rows = bulk.read_table(value).num_rows
    except bulk.NotABatch:
        return out == 1
    return out == rows if rows else out <= 1


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000) | mutated(clean_message()))
def test_any_bytes_on_the_clean_bulk_topic_cost_only_themselves(value: bytes) -> None:
    rows = aggregator_columns.read(value)
    assert accounted(value, rows.table.num_rows + len(rows.records) + len(rows.dead))
    written(rows.dead)


def no_column(rows: int, header: RawBatchHeader | bulk.CleanHeader) -> bytes:
    """A batch of ``rows`` rows and no column, as anyone may write one."""
    batch = pa.RecordBatch.from_pydict({"x": list(range(rows))}).drop_columns(["x"])
    schema = batch.schema.with_metadata({bulk.HEADER: header.model_dump_json().encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch.replace_schema_metadata(schema.metadata))
    value = sink.getvalue().to_pybytes()
    assert bulk.read_table(value).num_rows == rows
    return value


def test_a_field_twice_is_read_record_by_record() -> None:
    header = RawBatchHeader(batch_id="b", source="t", producer=None, received_at=RECEIVED)
    table = pa.table(
        [
            pa.array(["population"] * 2),
            pa.array(["33063"] * 2),
            pa.array(["2024"] * 2),
            pa.array(["1", "2"]),
            pa.array(["population"] * 2),
        ],
        names=["indicateur", "commune", "annee", "valeur", "indicateur"],
    )
    result = clean_bulk(bulk.encode(table, header), ORIGIN, ColumnCleaner(RULES), NOW)
    assert result.table.num_rows + len(result.dead) == 2


def test_rows_of_no_column_are_each_dead_lettered_not_lost() -> None:
    header = RawBatchHeader(batch_id="b", source="t", producer=None, received_at=RECEIVED)
    result = clean_bulk(no_column(3, header), ORIGIN, ColumnCleaner(RULES), NOW)
    assert result.table.num_rows == 0
    assert [letter.record_id for letter in result.dead] == [f"b:{i:06d}" for i in range(3)]
    rows = aggregator_columns.read(no_column(3, bulk.CleanHeader(batch_id="c")))
    assert rows.table.num_rows == 0 == len(rows.records) and len(rows.dead) == 3


def test_a_clean_message_of_another_shape_is_read_record_by_record() -> None:
    """Columns of other types, a value in an exponent, a NUL: read as the
    live lane reads a record, or refused as it refuses one."""
    table = pa.table(
        {
            "position": pa.array([0, 1, 2], pa.int64()),  # int64, not int32
            "indicateur": ["population", "population", "population\x00"],
            "sous_champ": ["total"] * 3,
            "annee": [2024, 2024, 2024],
            "commune": ["33063"] * 3,
            "commune_source": ["33063"] * 3,
            "valeur": ["1E+3", "12", "1"],
            "version": [1, 1, 1],
        }
    )
    rows = aggregator_columns.read(bulk.encode(table, bulk.CleanHeader(batch_id="x")))
    assert [r.valeur for r in rows.records] == [Decimal("1E+3"), Decimal(12)]
    [letter] = rows.dead
    assert (letter.record_id, letter.reason) == ("x:000002", "invalid_schema")


def test_clear_personal_data_on_the_clean_bulk_topic_is_refused_not_stored() -> None:
    table = aggregator_columns.read(clean_message(2)).table
    clear = '{"email": "jeanne.martin@example.org"}'
    hashed = json.dumps({"email": "b" * 64})
    table = table.set_column(
        table.column_names.index("pii"), "pii", pa.array([clear, hashed], pa.string())
    )
    table = table.set_column(
        table.column_names.index("pii_key_id"), "pii_key_id", pa.array(["k", "k"], pa.string())
    )
    rows = aggregator_columns.read(bulk.encode(table, bulk.CleanHeader(batch_id="b")))
    assert [d.reason for d in rows.dead] == ["invalid_schema"]
    assert "jeanne" not in json.dumps([d.model_dump(mode="json") for d in rows.dead])
    assert [r.pii for r in rows.records] == [{"email": "b" * 64}]
    assert rows.table.num_rows == 0  # neither row went by the set path


def test_a_value_published_for_a_territory_crosses_the_bulk_lane_as_it_was_cleaned() -> None:
    """The set path takes communes only: a territory's own value is read
    back as the record the cleaner made, without personal fields."""
    records = [
        CleanObservation(
            record_id=f"b:{i:06d}",
            indicateur="population",
            annee=2024,
            niveau=niveau,
            commune=code,
            commune_source=code,
            valeur=Decimal(5),
            version=1,
        )
        for i, (niveau, code) in enumerate([("commune", "33063"), ("epci", "200066793")])
    ]
    table = observations_table(enumerate(records))
    assert table is not None and table.column("niveau").to_pylist() == ["commune", "epci"]
    rows = aggregator_columns.read(bulk.encode(table, bulk.CleanHeader(batch_id="b")))
    assert rows.dead == [] and rows.table.column("niveau").to_pylist() == ["commune"]
    [published] = rows.records
    assert (published.niveau, published.commune, published.pii) == ("epci", "200066793", {})
