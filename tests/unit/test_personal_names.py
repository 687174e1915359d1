"""Personal data never passes as a value (issue #30, point 2): a field or
column named like a personal field, whatever its case, accents, blanks or
punctuation, is hashed, never a measure, and a value that came from one is
kept nowhere in clear (topics, dead letters, rejects)."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.pii import NAME_CHARS, PREFIX, PiiHasher, field_key
from common.referential import load
from common.settings import DEFAULT_PII_FIELDS
from schemas.raw import RawBatchHeader
from services.aggregator.intake import decode
from services.cleaner.columns import ColumnCleaner
from services.cleaner.transform import Rules, clean_message
from services.ingestor.columns import hidden
from services.ingestor.file_ingest import ingest_file
from services.ingestor.handlers import BlockHandler
from services.ingestor.layouts import detect
from tests.unit.fakes import MemoryPublisher
from tests.unit.test_cleaner_transform import CATALOGUE, ORIGIN, RECEIVED, envelope

HASHER = PiiHasher.create(b"k" * 32, DEFAULT_PII_FIELDS.split(","))
CLEAR = ("Jeanne", "jeanne.martin@example.org", "06 12 34 56 78", "3 rue des Lilas")
ACCENTED = {"e": "éèêë", "a": "àâ", "o": "ô", "i": "î", "u": "ù"}


def disguised(name: str) -> st.SearchStrategy[str]:
    """``name`` as a table or a producer might write it: any case, accents
    on its vowels, blanks, hyphens or dots between its letters."""
    letters = [c for c in name if c.isalnum()]

    def letter(c: str) -> st.SearchStrategy[str]:
        forms = [c, c.upper(), *ACCENTED.get(c, ""), *(a.upper() for a in ACCENTED.get(c, ""))]
        return st.sampled_from(forms)

    gaps = st.sampled_from(["", "", "", " ", "-", "_", ".", "\u00a0"])
    parts = [st.tuples(letter(c), gaps) for c in letters]
    return st.tuples(gaps, *parts).map(lambda t: t[0] + "".join(a + b for a, b in t[1:]))


@given(st.sampled_from(sorted(HASHER.fields)).flatmap(disguised))
def test_a_personal_name_is_personal_whatever_its_spelling(name: str) -> None:
    assert HASHER.is_personal(name), name
    assert HASHER.hide({"indicateur": "x", name: "Jeanne"})[name] != "Jeanne"


@pytest.mark.parametrize(
    "name", ["nombre", "nb_pdc", "telephonie", "adresses_ip", "nom2", "", "é", "\x00", "x" * 9999]
)
def test_other_names_are_not(name: str) -> None:
    assert not HASHER.is_personal(name)


def test_a_hostile_name_is_neither_compared_nor_cached() -> None:
    before = field_key.cache_info().currsize
    assert not HASHER.is_personal("e" * (NAME_CHARS + 1))
    assert not HASHER.is_personal(None) and not HASHER.is_personal(12)
    assert field_key.cache_info().currsize == before


def test_names_compare_without_case_accents_or_punctuation() -> None:
    assert field_key("Nom Déclarant") == field_key("NOM-DECLARANT") == "nomdeclarant"
    assert field_key(unicodedata.normalize("NFD", "Téléphone")) == "telephone"


HEADER = ["codgeo", "nb_pdc", "Prénom", "E-mail", "Téléphone", "Adresse", "nom_commune"]


def test_a_personal_column_of_a_commune_table_is_never_a_measure() -> None:
    layout = detect(HEADER, personal=HASHER.is_personal)
    assert layout.format == "communes"
    assert list(layout.values.values()) == ["nb_pdc"]
    assert sorted(layout.extras.values()) == ["adresse", "e_mail", "prenom", "telephone"]
    assert "libelle_territoire" in layout.fields.values()  # nom_commune: the commune's name


def test_a_mapping_cannot_turn_a_personal_column_into_a_value() -> None:
    columns = {"codgeo": "commune", "Courriel": "valeur", "ind": "indicateur"}
    with pytest.raises(ValueError, match="Courriel"):
        detect(["codgeo", "ind", "Courriel"], columns=columns, personal=HASHER.is_personal)


def test_a_commune_table_with_personal_columns_publishes_them_hashed_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bornes.csv"
    rows = [HEADER, ["33063", "12", *CLEAR, "Bordeaux"], ["33281", "", "", "", "x", "", ""]]
    path.write_text("\n".join(",".join(row) for row in rows) + "\n", encoding="utf-8")
    publisher = MemoryPublisher(hasher=HASHER)
    summary = ingest_file(BlockHandler(publisher), path, show_progress=False)
    published = publisher.tables + [r for records, _ in publisher.published for r in records]
    assert {r["indicateur"] for r in published} == {"nb_pdc"}
    assert summary.published == 2
    text = json.dumps(published, ensure_ascii=False)
    assert not any(clear in text for clear in CLEAR)
    assert published[0]["e_mail"] == PREFIX + HASHER.digest(CLEAR[1])


def test_the_value_of_an_indicator_named_like_a_personal_field_is_hashed() -> None:
    record = {"indicateur": " E-Mail ", "commune": "33063", "annee": "2024", "valeur": CLEAR[1]}
    assert HASHER.hide(record)["valeur"] == PREFIX + HASHER.digest(CLEAR[1])
    table = hidden(pa.table({k: [v, v] for k, v in record.items()}), HASHER)
    assert table.column("valeur").to_pylist() == [PREFIX + HASHER.digest(CLEAR[1])] * 2
    untouched = {**record, "indicateur": "nb_pdc"}
    assert HASHER.hide(untouched) is untouched


@pytest.mark.parametrize("accept_unknown", [False, True])
def test_the_cleaner_refuses_such_an_indicator_on_both_lanes_and_keeps_no_clear_value(
    accept_unknown: bool,
) -> None:
    rules = Rules(
        ref=load(),
        hasher=HASHER,
        catalogue=CATALOGUE,
        accept_unknown=accept_unknown,
    )
    records = [
        {"indicateur": name, "commune": "33063", "annee": "2024", "valeur": value}
        for name in ("Téléphone", "nom déclarant")
        for value in (CLEAR[2], "12", PREFIX + HASHER.digest(CLEAR[2]))  # as the edge sends it
    ]
    live = clean_message(envelope(*records), ORIGIN, rules).dead
    header = RawBatchHeader(batch_id="b1", source="t", received_at=RECEIVED)
    table = pa.table({k: [r[k] for r in records] for k in records[0]})
    bulk = ColumnCleaner(rules).clean(table, header, RECEIVED).dead
    for dead in (live, bulk):
        assert [d.reason for d in dead] == ["personal_field"] * 6
        text = json.dumps([d.model_dump(mode="json") for d in dead], ensure_ascii=False)
        assert CLEAR[2] not in text
        assert dead[0].payload is not None
        assert dead[0].payload["valeur"] == PREFIX + HASHER.digest(CLEAR[2])


@pytest.mark.parametrize(
    "message",
    [
        b"\xff" + b"jeanne.martin@example.org",
        b'{"nom": "Jeanne Martin", "records": "jeanne.martin@example.org"}',
        b'{"nom": "Jeanne Martin"}',
        b'"jeanne.martin@example.org',
    ],
)
def test_the_aggregator_names_what_is_wrong_with_a_message_without_its_bytes(
    message: bytes,
) -> None:
    records, dead = decode([message])
    assert records == [] and [d.reason for d in dead] == ["invalid_message"]
    assert "jeanne" not in dead[0].detail.casefold()
