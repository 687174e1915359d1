from __future__ import annotations

from pathlib import Path

import pytest

from services.ingestor.batching import (
    BodyError,
    Parsed,
    batches,
    parse_json_body,
    parse_ndjson_body,
    validate,
)
from services.ingestor.files import read_long_csv


def records(parsed: Parsed) -> list:
    return [r for _, r in parsed.records]


def test_json_object_or_array() -> None:
    assert records(parse_json_body(b'{"a": 1}')) == [{"a": 1}]
    assert records(parse_json_body(b'[{"a": 1}, {"b": 2}]')) == [{"a": 1}, {"b": 2}]


def test_fractions_keep_their_exact_decimal_text() -> None:
    assert records(parse_json_body(b'{"valeur": 0.1000000000000000055511}')) == [
        {"valeur": "0.1000000000000000055511"}
    ]


def test_unreadable_json_names_the_line() -> None:
    with pytest.raises(BodyError) as caught:
        parse_json_body(b'[{"a": 1},\n{"b": }]')
    assert caught.value.errors[0].line == 2


def test_json_array_items_must_be_objects() -> None:
    parsed = parse_json_body(b'[{"a": 1}, 3, "x"]')
    assert [e.line for e in parsed.errors] == [2, 3]
    assert records(parsed) == [{"a": 1}]


def test_ndjson_lists_every_bad_line() -> None:
    parsed = parse_ndjson_body(b'{"a": 1}\n\n{"b": \n[1]\n{"c": 3}\n')
    assert [(e.line, e.error.split(":")[0]) for e in parsed.errors] == [
        (3, "invalid JSON"),
        (4, "not a JSON object"),
    ]
    assert parsed.records == [(1, {"a": 1}), (5, {"c": 3})]


def test_schema_errors_name_line_and_field_without_the_value() -> None:
    parsed = validate(
        parse_ndjson_body(
            b'{"indicateur": "x", "commune": "33063"}\n{"commune": "Jeanne"}\n'
            b'{"indicateur": ["Jeanne"], "commune": "33063"}'
        )
    )
    assert [r for r, _ in parsed.records] == [1]
    assert [e.line for e in parsed.errors] == [2, 3]
    assert "indicateur" in parsed.errors[0].error
    assert all("Jeanne" not in e.error for e in parsed.errors)


def test_batches_cut_records_into_envelopes() -> None:
    cut = list(batches(({"i": i} for i in range(7)), source="t", size=3))
    assert [len(b.records) for b in cut] == [3, 3, 1]
    assert len({b.batch_id for b in cut}) == 3


LONG = (
    "codgeo_libelle;libelle_variable;variable;libelle_sous_champ;sous_champ;type_var;"
    "unite;no_ind;code;annee;valeur\n"
    "Annecy;Population;population;Total;total;num;habitants;1;74010;2022;132117\n"
    "Bonneville;Population;population;Total;total;num;habitants;1;74042;2022;s\n"
)


def test_long_format_with_semicolons(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(LONG, encoding="utf-8")
    rows = list(read_long_csv(path))
    assert rows[0] == {
        "commune": "74010",
        "indicateur": "population",
        "annee": "2022",
        "valeur": "132117",
        "sous_champ": "total",
        "libelle_sous_champ": "Total",
        "libelle_indicateur": "Population",
        "unite": "habitants",
        "codgeo_libelle": "Annecy",
        "type_var": "num",
        "no_ind": "1",
    }
    assert rows[1]["valeur"] == "s"


def test_commas_bom_and_windows_1252(tmp_path: Path) -> None:
    text = 'variable,code,annee,valeur,unite\nco2,01001,2021,"12,5",tonnes équivalent\n'
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    latin = tmp_path / "latin.csv"
    latin.write_bytes(text.encode("cp1252"))
    for path in (bom, latin):
        [row] = list(read_long_csv(path))
        assert row == {
            "indicateur": "co2",
            "commune": "01001",
            "annee": "2021",
            "valeur": "12,5",
            "unite": "tonnes équivalent",
        }


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("foo;bar\n1;2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="commune, indicateur, valeur"):
        list(read_long_csv(path))
