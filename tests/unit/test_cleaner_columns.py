"""The bulk lane cleans a column at a time and must give, record for record,
what the live lane gives cleaning one record at a time: the same clean
values, the same dead letters with the same reasons and details. Checked
over any records, friendly and hostile."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas import bulk
from schemas.clean import CleanObservation
from schemas.raw import RawBatchHeader
from services.cleaner.columns import ColumnCleaner, canonical, numeric_text
from services.cleaner.transform import MessageOrigin, clean_message
from tests.unit.test_cleaner_transform import RECEIVED, RULES

ORIGIN = MessageOrigin("indicators.raw", 0, 7, 1_700_000_000_000)
NOW = datetime(2026, 12, 3, tzinfo=UTC)
FIELDS = (
    "indicateur",
    "commune",
    "annee",
    "date",
    "valeur",
    "sous_champ",
    "unite",
    "libelle_indicateur",
    "libelle_sous_champ",
    "version",
    "libelle_territoire",
    "departement",
    "niveau",
    "code",
    "nom_declarant",
    "email",
    "E-Mail",
    "remarque",
)
hostile = st.text(max_size=40) | st.sampled_from(
    ["", " ", "\x00", "a\x00b", "\xa0", "\u2003x\u2003", "x" * 101, "é" * 1001, "\t\n"]
)
VALUES: dict[str, st.SearchStrategy[str]] = {
    "indicateur": st.sampled_from(
        [
            *("population", "x", "temperature", "densite", "taux", " population ", "po pu"),
            *("nope", "E-mail", " nom déclarant "),  # named like personal fields
        ]
    ),
    "commune": st.sampled_from(
        [
            *("33063", "1001", "01001", " 33063 ", "2a004", "2A004", "20004", "13055", "0"),
            *("abcde", "75056", "33281", "01015", "01340", "01003", "55273", "97101", "99999"),
            *("2B033", "75101", "75120", "69381", "13216", "75121", "13200"),
        ]
    ),
    "annee": st.sampled_from(["2024", "1900", "2100", "1899", "20 24", "", " 2023 ", "0", "99999"]),
    "date": st.sampled_from(["12/03/2022", "2021-01-31", "31/02/2024", "", "2022", "01/01/2101"]),
    "valeur": st.sampled_from(
        [
            *("12", "12,5", "-0", "-0,00", "+7", "007.50", "5.", "s", "ND", "", " ", "1e3"),
            *("1 234,5", "NaN", "inf", "1e99", "0.0000000001", "9" * 21, "9" * 22, "59.9999999"),
            *("60", "-61", "1.000000000000", "-3.25", "0", "00", "-", "secret", "abc"),
        ]
    )
    | st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    "version": st.sampled_from(["1", "007", "9007199254740991", "9007199254740992", "-1", "1.0"]),
    "sous_champ": st.sampled_from(
        ["total", "moins_30_ans", " total ", "", "autre", "moins30", " moins30 ", "moins31"]
    ),
    # A commune named, not coded: unique, ambiguous (12 Sainte-Colombe), unknown, odd forms.
    "libelle_territoire": st.sampled_from(
        [
            *("Bordeaux", "SAINT EMILION", "St-Émilion", "Sainte-Colombe", "Rochelle (La)"),
            *("Nulle-Part", "", " ", "-", "Paris", "Annecy"),
        ]
    ),
    "departement": st.sampled_from(["33", "17", "5", "2A", "99", "", "gironde"]),
    # A value published for a territory above the commune, or odd levels.
    "niveau": st.sampled_from(["commune", "COM", "epci", "departement", "Région", "france", ""]),
    "code": st.sampled_from(["200000172", "33", "2a", "84", "FR", "33063", "", "999", " "]),
}
GOOD = {"indicateur": "population", "commune": "33063", "annee": "2024", "valeur": "5"}


def changed(overrides: dict[str, str | None]) -> dict[str, str]:
    """A good record with a few fields changed (None: removed)."""
    record = {**GOOD, **overrides}
    return {k: v for k, v in record.items() if v is not None}


def field_values(name: str) -> st.SearchStrategy[str | None]:
    usual = VALUES.get(name, st.sampled_from(["Jean Dupont", "u", "Libellé", "tonnes", ""]))
    return st.one_of(usual, usual, usual, st.none(), hostile)


overrides = st.lists(st.sampled_from(FIELDS), max_size=4, unique=True).flatmap(
    lambda names: st.fixed_dictionaries({name: field_values(name) for name in names})
)
records = st.lists(overrides.map(changed), min_size=1, max_size=12)


def header(producer: str | None = None) -> RawBatchHeader:
    return RawBatchHeader(batch_id="b1", source="t", producer=producer, received_at=RECEIVED)


def one_by_one(rows: list[dict[str, str]], producer: str | None) -> tuple[dict, set]:
    envelope = {**header(producer).model_dump(mode="json"), "records": rows}
    result = clean_message(json.dumps(envelope).encode(), ORIGIN, RULES, now=NOW)
    return {o.record_id: as_row(o) for o in result.clean}, letters(result.dead)


def by_columns(rows: list[dict[str, str]], producer: str | None) -> tuple[dict, set]:
    names = list(dict.fromkeys(name for row in rows for name in row))  # as the records order them
    table = pa.table({n: pa.array([r.get(n) for r in rows], pa.string()) for n in names})
    if not names:
        table = pa.table({"indicateur": pa.nulls(len(rows), pa.string())})
    result = ColumnCleaner(RULES).clean(table, header(producer), NOW)
    assert result.table.schema == bulk.CLEAN_SCHEMA
    clean = {}
    for row in result.table.to_pylist():
        record_id = f"b1:{row.pop('position'):06d}"
        row.pop("place")
        row["pii"] = json.loads(row["pii"]) if row["pii"] else {}
        row["producteur"] = result.producer
        clean[record_id] = row
    return clean, letters(result.dead)


def as_row(o: CleanObservation) -> dict[str, Any]:
    row = o.model_dump(exclude={"record_id"})
    row["valeur"] = None if o.valeur is None else numeric_text(o.valeur)
    return row


def letters(dead: list) -> set:
    """Each letter; a detail lists the fields in the record's order, which
    columns keep only as the table's: compared as a set of parts."""
    return {
        (
            d.record_id,
            d.reason,
            frozenset(d.detail.split("; ")),
            json.dumps(d.payload, sort_keys=True),
        )
        for d in dead
    }


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(records, st.sampled_from([None, "ademe"]))
@example([GOOD, {**GOOD, "commune": "1001", "valeur": "s"}], None)
@example([{**GOOD, "nom_declarant": "Jean", "email": ""}, {**GOOD, "indicateur": None}], "x")
@example(
    [{**GOOD, "commune": "01340", "indicateur": i} for i in ("temperature", "taux", "x")], None
)
@example(
    [
        changed({"commune": None, "libelle_territoire": "Sainte-Colombe", "departement": "33"}),
        changed({"commune": "", "libelle_territoire": "Bordeaux"}),
        changed({"commune": None, "libelle_territoire": "Sainte-Colombe"}),
    ],
    None,
)
def test_columns_clean_as_the_records_one_by_one(rows: list[dict], producer: str | None) -> None:
    rows = [{k: v for k, v in row.items() if v is not None} for row in rows]
    assert by_columns(rows, producer) == one_by_one(rows, producer)


def test_a_file_of_good_rows_is_cleaned_without_the_record_by_record_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The point of the lane: plain rows never reach clean_record."""
    monkeypatch.setattr("services.cleaner.columns.clean_record", _unexpected)
    rows = [{**GOOD, "commune": c, "valeur": v} for c, v in (("33063", "1,5"), ("01001", "s"))]
    clean, dead = by_columns(rows, None)
    assert len(clean) == 2 and dead == set()


def _unexpected(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("clean_record called for a plain row")


@given(st.from_regex(r"[+-]?[0-9]{1,21}([.,][0-9]{0,9})?", fullmatch=True))
def test_plain_numbers_are_written_as_postgres_prints_them(text: str) -> None:
    from decimal import Decimal

    expected = numeric_text(Decimal(text.replace(",", ".")))
    assert canonical(pa.array([text])).to_pylist() == [expected]
