"""Every file format producers deliver, read into raw records."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from common.pii import PiiHasher
from services.ingestor.columns import hidden
from services.ingestor.file_ingest import ingest_file
from services.ingestor.files import Mapping, read_file
from services.ingestor.handlers import BlockHandler
from services.ingestor.publisher import RawPublisher
from tests.unit.fakes import MemoryProducer

LONG = (
    "codgeo_libelle;libelle_variable;variable;libelle_sous_champ;sous_champ;type_var;"
    "unite;no_ind;code;annee;valeur\n"
    "Annecy;Population;population;Total;total;num;habitants;1;74010;2022;132117\n"
    "Bonneville;Population;population;Total;total;num;habitants;1;74042;2022;s\n"
)


def records(path: Path, **options: Any) -> list[dict]:
    return [r for _, r in read_file(path, **options)[1]]


def test_long_format_with_semicolons(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(LONG, encoding="utf-8")
    first, second = records(path)
    assert {
        k: first[k]
        for k in (
            "commune",
            "indicateur",
            "annee",
            "valeur",
            "sous_champ",
            "unite",
            "libelle_indicateur",
        )
    } == {
        "commune": "74010",
        "indicateur": "population",
        "annee": "2022",
        "valeur": "132117",
        "sous_champ": "total",
        "unite": "habitants",
        "libelle_indicateur": "Population",
    }
    assert second["valeur"] == "s"


def test_windows_1252_with_decimal_commas_bom_and_tabs(tmp_path: Path) -> None:
    text = "variable;code;annee;valeur;unite\nco2;01001;2021;12,5;tonnes équivalent\n"
    latin = tmp_path / "latin.csv"
    latin.write_bytes(text.encode("cp1252"))
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + text.replace(";", "\t").encode("utf-8"))
    for path in (latin, bom):
        [row] = records(path)
        assert (row["indicateur"], row["commune"], row["valeur"], row["unite"]) == (
            "co2",
            "01001",
            "12,5",
            "tonnes équivalent",
        )


def test_itdd_wide_format_gives_one_record_per_year(tmp_path: Path) -> None:
    path = tmp_path / "itdd.csv"
    path.write_text(
        "CODGEO_CODE;VARIABLE;LIBELLE_VARIABLE;LIBELLE_SOUS_CHAMP;UNITE;A2015;A2016\n"
        "33063;co2;Émissions;Total;t;10,5;nd\n",
        encoding="utf-8",
    )
    assert [(r["commune"], r["indicateur"], r["annee"], r["valeur"]) for r in records(path)] == [
        ("33063", "co2", "2015", "10,5"),
        ("33063", "co2", "2016", "nd"),
    ]


def test_commune_table_gives_one_record_per_measure(tmp_path: Path) -> None:
    path = tmp_path / "irve.csv"
    path.write_text(
        "typezone,zone,codezone,date,nb_stations,nb_pdc\n"
        "commune,Bordeaux,33063,31/12/2024,120,480\n",
        encoding="utf-8",
    )
    assert [(r["commune"], r["indicateur"], r["date"], r["valeur"]) for r in records(path)] == [
        ("33063", "nb_stations", "31/12/2024", "120"),
        ("33063", "nb_pdc", "31/12/2024", "480"),
    ]


def test_excel_workbook(tmp_path: Path) -> None:
    from datetime import datetime

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["codezone", "date", "nb_stations"])
    sheet.append(["33063", datetime(2024, 12, 31), 120])
    sheet.append([1001, datetime(2024, 12, 31), 2.5])  # the leading zero lost by Excel
    path = tmp_path / "irve.xlsx"
    workbook.save(path)
    assert [(r["commune"], r["date"], r["valeur"]) for r in records(path)] == [
        ("33063", "31/12/2024", "120"),
        ("1001", "31/12/2024", "2.5"),
    ]


def test_json_and_ndjson_files(tmp_path: Path) -> None:
    record = {"indicateur": "co2", "commune": "33063", "annee": 2021, "valeur": 1.5}
    (tmp_path / "a.json").write_text(json.dumps([record, record]))
    (tmp_path / "b.ndjson").write_text(json.dumps(record) + "\n\n{broken\n")
    assert records(tmp_path / "a.json") == [{**record, "valeur": "1.5"}] * 2
    good, bad = read_file(tmp_path / "b.ndjson")[1]
    assert good == (1, {**record, "valeur": "1.5"})
    assert bad[0] == 3 and bad[1].startswith("invalid JSON")


def test_mapping_file_names_the_columns(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        'format = "long"\n[colonnes]\n"Code INSEE" = "commune"\n'
        '"Mesure" = "indicateur"\n"Exercice" = "annee"\n"Montant" = "valeur"\n'
    )
    path = tmp_path / "other.csv"
    path.write_text("Code INSEE;Mesure;Exercice;Montant\n33063;co2;2020;4\n")
    [row] = records(path, mapping=Mapping.load(mapping))
    assert (row["commune"], row["indicateur"], row["annee"], row["valeur"]) == (
        "33063",
        "co2",
        "2020",
        "4",
    )


def test_unreadable_layout_names_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("foo;bar\n1;2\n")
    with pytest.raises(ValueError, match="no column for commune"):
        read_file(path)


def test_summary_accounts_for_every_record_and_keeps_the_rejects(tmp_path: Path) -> None:
    path = tmp_path / "mixed.ndjson"
    lines = [
        json.dumps({"indicateur": "co2", "commune": "33063", "annee": 2020, "valeur": i})
        for i in range(5)
    ]
    lines[2] = json.dumps({"commune": "33063", "valeur": 1})  # no indicateur
    lines.append("[1, 2]")
    path.write_text("\n".join(lines))
    producer = MemoryProducer()
    summary = ingest_file(BlockHandler(RawPublisher(producer, 2)), path, show_progress=False)  # type: ignore[arg-type]
    assert (summary.read, summary.published) == (6, 4)
    assert summary.read == summary.published + sum(summary.rejected.values())
    assert summary.rejected == {"invalid_schema": 1, "not_an_object": 1}
    rejects = [json.loads(x) for x in summary.rejects_path.read_text().splitlines()]
    assert [(r["_ligne"], r["_raison"]) for r in rejects] == [
        (3, "invalid_schema"),
        (6, "not_an_object"),
    ]
    # As the bulk lane carries them: text.
    assert [r["valeur"] for r in producer.records()] == ["0", "1", "3", "4"]


def test_personal_fields_leave_hashed_and_the_rejects_file_is_private(tmp_path: Path) -> None:
    hasher = PiiHasher.create(b"k" * 32, ["email", "nom_declarant"])
    marker = "jeanne.marker@example.org"
    good = {"indicateur": "co2", "commune": "33063", "annee": 2020, "valeur": 1}
    path = tmp_path / "people.ndjson"
    path.write_text(
        "\n".join(
            json.dumps(r)
            for r in (
                {**good, "email": marker, "nom_declarant": "Jeanne Marker"},
                {"commune": "33063", "email": marker},  # refused: no indicateur
                json.dumps(marker),  # refused: not an object
            )
        )
    )
    producer = MemoryProducer()
    publisher = RawPublisher(
        producer,  # type: ignore[arg-type]
        500,
        hasher.hide,
        hide_columns=functools.partial(hidden, hasher=hasher),
    )
    summary = ingest_file(BlockHandler(publisher), path, show_progress=False)
    assert (summary.published, sum(summary.rejected.values())) == (1, 2)
    written = b"".join(producer.messages) + summary.rejects_path.read_bytes()
    assert b"marker" not in written.lower()
    [published] = producer.records()
    assert published["email"] == f"hmac-sha256:{hasher.digest(marker)}"
    assert summary.rejects_path.stat().st_mode & 0o777 == 0o600


GOOD_LINE = b'{"indicateur": "co2", "commune": "33063", "annee": 2020, "valeur": 1}'


@pytest.mark.parametrize(
    ("odd", "reason"),
    [
        (b'{"indicateur": "co2", "commune": "33063", "nom": "\xff\xfe"}', "invalid_schema"),
        (b'{"indicateur": "co2", "commune": "33063", "nom": "\\ud800"}', "invalid_schema"),
        (b'{"indicateur": "co2", "commune": "33063", "valeur": "1\\u0000"}', "invalid_schema"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
        (b'{"valeur": ' + b"9" * 5000 + b"}", "invalid_json"),
        (b"\xff\xfe\x00 not JSON", "invalid_json"),
    ],
    ids=["bad-utf8", "surrogate", "nul", "nested", "long-int", "garbage"],
)
def test_an_odd_line_costs_only_itself_and_is_kept_in_the_rejects(
    tmp_path: Path, odd: bytes, reason: str
) -> None:
    """A line that once stopped `itte ingest` (and every line after it)."""
    path = tmp_path / "odd.ndjson"
    path.write_bytes(b"\n".join([GOOD_LINE, odd, GOOD_LINE]) + b"\n")
    producer = MemoryProducer()
    summary = ingest_file(BlockHandler(RawPublisher(producer, 2)), path, show_progress=False)  # type: ignore[arg-type]
    assert (summary.read, summary.published, summary.rejected) == (3, 2, {reason: 1})
    [rejected] = [json.loads(x) for x in summary.rejects_path.read_text("utf-8").splitlines()]
    assert (rejected["_ligne"], rejected["_raison"]) == (2, reason)
    assert len(producer.records()) == 2


def test_a_byte_past_the_sniffed_encoding_rejects_its_row_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("services.ingestor.files.SNIFF_BYTES", 64)  # as past the first MiB
    rows = ["variable;code;annee;valeur;unite\n", *(f"co2;3306{i};2021;{i};t\n" for i in range(4))]
    rows[2] = "co2;33061;2021;1;tonnes équivalent\n"
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        "".join(rows[:2]).encode() + rows[2].encode("cp1252") + "".join(rows[3:]).encode()
    )
    producer = MemoryProducer()
    summary = ingest_file(BlockHandler(RawPublisher(producer, 2)), path, show_progress=False)  # type: ignore[arg-type]
    assert (summary.read, summary.published, summary.rejected) == (4, 3, {"invalid_schema": 1})
    [rejected] = [json.loads(x) for x in summary.rejects_path.read_text("utf-8").splitlines()]
    assert rejected["_ligne"] == 3 and "unite" in rejected["_detail"]


def test_an_unreadable_json_document_is_one_rejected_record(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(b"[" + GOOD_LINE + b", {")
    producer = MemoryProducer()
    summary = ingest_file(BlockHandler(RawPublisher(producer, 2)), path, show_progress=False)  # type: ignore[arg-type]
    assert (summary.read, summary.published, summary.rejected) == (1, 0, {"invalid_json": 1})
    assert producer.messages == []
