"""The bulk lane carries records as text columns. Whatever a producer sent,
a record the edge accepts must be cleaned by the bulk lane to what the live
lane makes of it, and the edge's column checks must never accept a record
that its record-by-record check refuses."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas.raw import schema_problem
from services.ingestor.columns import (
    check_rows,
    representable,
    surely_accepted,
    table_of,
)
from services.ingestor.layouts import detect
from tests.unit.test_cleaner_columns import by_columns, one_by_one
from tests.unit.test_hostile_records import FIELDS, GOOD, json_values, scalars

# Records near the good one: any scalar, or any JSON value, in a few fields.
records = st.dictionaries(st.sampled_from(FIELDS), scalars | json_values, max_size=4).map(
    lambda r: {**GOOD, **r}
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(records, min_size=1, max_size=6))
@example([{**GOOD, "annee": True, "version": 3.0, "unite": 1.5, "nom_declarant": None}])
@example([{**GOOD, "annee": 2024.0, "valeur": 12}, {**GOOD, "annee": 2024.5, "valeur": 0.1}])
# Integral floats out of the year's bounds: the live lane reads them as text.
@example([{**GOOD, "annee": 3.402823466e38}, {**GOOD, "annee": -2.0}, {**GOOD, "annee": 1e4}])
def test_a_record_the_edge_accepts_is_cleaned_alike_by_both_lanes(batch: list[dict]) -> None:
    accepted = [r for r in batch if schema_problem(r) is None and representable(r)]
    if not accepted:
        return
    table = table_of(accepted)
    text = [{k: v for k, v in row.items() if v is not None} for row in table.to_pylist()]
    # The live lane reads each record as the producer sent it; the bulk lane
    # its text columns.
    clean, dead = one_by_one(json.loads(json.dumps(accepted, default=str)), None)
    bulk_clean, bulk_dead = by_columns(text, None)
    assert bulk_clean == clean
    # The same letters; a payload shows what its lane carried (text here).
    assert {letter[:3] for letter in bulk_dead} == {letter[:3] for letter in dead}


texts = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["", " ", "\x00", "12,5", "-0", "1e999", "s", "NaN", "9" * 70, "x" * 101]),
    st.sampled_from(["2024", "7", "9007199254740992", "1.0", "é"]),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(FIELDS), texts), min_size=1, max_size=8))
def test_the_column_checks_never_accept_what_the_record_check_refuses(
    rows: list[dict[str, Any]],
) -> None:
    names = list(dict.fromkeys(n for row in rows for n in row)) or ["indicateur"]
    table = pa.table({n: pa.array([row.get(n) for row in rows], pa.string()) for n in names})
    present = [{k: v for k, v in row.items() if v is not None} for row in table.to_pylist()]
    for sure, record in zip(surely_accepted(table).to_pylist(), present, strict=True):
        if sure:
            assert schema_problem(record) is None, record
    ok, refused = check_rows(table)
    assert ok.to_pylist() == [schema_problem(r) is None for r in present]
    assert refused == {i: p for i, r in enumerate(present) if (p := schema_problem(r))}


def test_plain_rows_need_no_record_check() -> None:
    table = table_of([GOOD, {**GOOD, "valeur": "s", "annee": "2023"}])
    assert surely_accepted(table).to_pylist() == [True, True]


HEADERS = st.sampled_from(
    [
        ["variable", "code", "annee", "valeur", "unite"],
        ["codgeo", "variable", "valeur", "remarque", "codgeo"],  # a column twice
        ["CODGEO_CODE", "VARIABLE", "LIBELLE_VARIABLE", "UNITE", "A2015", "A2016"],
        ["typezone", "zone", "codezone", "date", "nb_stations", "nb_pdc"],
        ["code", "indicateur", "valeur", "nom", "email"],
    ]
)
cells = st.sampled_from(["", " ", "33063", " 1001 ", "co2", "12,5", "s", "2020", "x y", "\t"])


@settings(max_examples=300, deadline=None)
@given(HEADERS, st.lists(st.lists(cells, max_size=8), min_size=1, max_size=6))
def test_a_layout_makes_the_same_records_as_columns_and_one_by_one(
    header: list[str], rows: list[list[str]]
) -> None:
    layout = detect(header)
    expected = [record for row in rows for record in layout.records(row)]
    columns = layout.columns(rows)
    assert all(len(values) == len(expected) for values in columns.values())
    by_columns = [
        {name: values[i] for name, values in columns.items() if values[i] is not None}
        for i in range(len(expected))
    ]
    # Equal as records; a column keeps one place for a field that a record
    # one by one may append (an empty valeur), so the order of fields may differ.
    assert by_columns == expected
