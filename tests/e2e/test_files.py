"""Every file format through `itte ingest` and the services, to the API."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook

from common.referential import load
from tests.e2e.stack import Stack, eventually, get_json, post

REF = load()
COMMUNES = sorted(c.code for c in REF.communes.values() if c.departement == "2B")


def value(i: int) -> Decimal:
    return Decimal(i % 7) + Decimal("0.5")


def write_long_cp1252(path: Path) -> None:
    lines = ["code;variable;libelle_variable;annee;valeur"]
    lines += [
        f"{c};e2e_long;Émissions évitées;2024;{str(value(i)).replace('.', ',')}"
        for i, c in enumerate(COMMUNES)
    ]
    path.write_bytes("\n".join(lines).encode("cp1252"))


def write_wide(path: Path) -> None:
    lines = ["CODGEO_CODE;VARIABLE;LIBELLE_VARIABLE;LIBELLE_SOUS_CHAMP;UNITE;A2023;A2024"]
    lines += [f"{c};e2e_wide;x;Total;u;nd;{value(i)}" for i, c in enumerate(COMMUNES)]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_commune_table(path: Path) -> None:
    lines = ["typezone,zone,codezone,date,nb_stations"]
    lines += [f"commune,x,{c},31/12/2024,{value(i)}" for i, c in enumerate(COMMUNES)]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_xlsx(path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["codezone", "annee", "nb_pdc"])
    for i, c in enumerate(COMMUNES):
        sheet.append([c, 2024, float(value(i))])
    workbook.save(path)


def write_json(path: Path, indicator: str, ndjson: bool) -> None:
    rows = [
        {"indicateur": indicator, "commune": c, "annee": 2024, "valeur": float(value(i))}
        for i, c in enumerate(COMMUNES)
    ]
    path.write_text("\n".join(map(json.dumps, rows)) if ndjson else json.dumps(rows))


def write_mapped(path: Path, mapping: Path) -> None:
    mapping.write_text(
        'format = "long"\n[colonnes]\n"Code INSEE" = "commune"\n'
        '"Mesure" = "indicateur"\n"Exercice" = "annee"\n"Montant" = "valeur"\n'
    )
    lines = ["Code INSEE\tMesure\tExercice\tMontant"]
    lines += [f"{c}\te2e_mapped\t2024\t{value(i)}" for i, c in enumerate(COMMUNES)]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_named(path: Path) -> None:
    """The source project's long layout with no code: each commune by its
    name (``codgeo_libelle``), in its département (``dep``)."""
    lines = ["codgeo_libelle;dep;libelle_variable;variable;annee;valeur"]
    lines += [
        f"{REF.communes[c].nom};2B;Par nom;e2e_named;2024;{value(i)}"
        for i, c in enumerate(COMMUNES)
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


CASES = {
    "e2e_named": ("noms.csv", write_named, 1),
    "e2e_long": ("long.csv", write_long_cp1252, 1),
    "e2e_wide": ("itdd.csv", write_wide, 2),  # two year columns: 2023 (nd) and 2024
    "nb_stations": ("irve.csv", write_commune_table, 1),
    "nb_pdc": ("irve.xlsx", write_xlsx, 1),
    "e2e_json": ("obs.json", lambda p: write_json(p, "e2e_json", False), 1),
    "e2e_ndjson": ("obs.ndjson", lambda p: write_json(p, "e2e_ndjson", True), 1),
}


@pytest.mark.parametrize("indicator", [*CASES, "e2e_mapped"])
def test_each_format_reaches_the_api_and_accounts_for_every_record(
    stack: Stack, tmp_path: Path, indicator: str
) -> None:
    command = [sys.executable, "-m", "itte", "ingest"]
    if indicator == "e2e_mapped":
        path, mapping = tmp_path / "other.tsv", tmp_path / "mapping.toml"
        write_mapped(path, mapping)
        command += ["--mapping", str(mapping)]
        per_row = 1
    else:
        name, write, per_row = CASES[indicator]
        path = tmp_path / name
        write(path)
    done = subprocess.run(
        [*command, str(path)], env=stack.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    read, published, rejected = map(
        int, re.search(r"(\d+) read, (\d+) published, (\d+) rejected", done.stdout).groups()
    )
    assert read == published + rejected == len(COMMUNES) * per_row
    expected = sum(value(i) for i in range(len(COMMUNES)))

    def departement() -> dict | None:
        rows = get_json(
            stack.url("api", f"/indicateurs?departement=2B&indicateur={indicator}&annee=2024")
        )
        return rows[0] if rows and Decimal(str(rows[0]["valeur"])) == expected else None

    row = eventually(departement, 60, f"{indicator} in Haute-Corse")
    assert row["communes_renseignees"] == len(COMMUNES)


def test_a_commune_named_by_its_label_alone_is_placed_or_refused_with_its_candidates(
    stack: Stack,
) -> None:
    records = [
        {"indicateur": "e2e_label", "libelle_territoire": REF.communes[c].nom,
         "departement": "2B", "annee": 2024, "valeur": str(value(i))}
        for i, c in enumerate(COMMUNES)
    ]  # fmt: skip
    # Twelve communes are named Sainte-Colombe: refused, naming them.
    records.append({"indicateur": "e2e_label", "libelle_territoire": "Sainte-Colombe",
                    "annee": 2024, "valeur": "1"})  # fmt: skip
    status, body = post(stack.url("ingestor", "/observations"), json.dumps(records).encode())
    assert status == 202 and body["accepted"] == len(records)
    expected = sum(value(i) for i in range(len(COMMUNES)))

    def placed() -> dict | None:
        rows = get_json(
            stack.url("api", "/indicateurs?departement=2B&indicateur=e2e_label&annee=2024")
        )
        return rows[0] if rows and Decimal(str(rows[0]["valeur"])) == expected else None

    row = eventually(placed, 60, "e2e_label in Haute-Corse")
    assert row["communes_renseignees"] == len(COMMUNES)

    [batch_id] = body["batch_ids"]

    def complete() -> dict | None:
        code, found = post(stack.url("ingestor", f"/observations/{batch_id}"), None)
        return found if code == 200 and found["complete"] else None

    found = eventually(complete, 60, "the batch to be complete")
    [letter] = found["rejected"]
    assert (letter["line"], letter["stage"], letter["reason"]) == (
        len(records),
        "cleaner",
        "ambiguous_label",
    )
    assert "33390 (Gironde)" in letter["detail"]


def test_values_published_for_territories_load_by_file_and_by_http(
    stack: Stack, tmp_path: Path
) -> None:
    """The source project's EPCI rows, by label and by code, in a file; a
    département's value by HTTP. Served as published, never summed up."""
    path = tmp_path / "pcaet.csv"
    path.write_text(
        "codgeo_libelle;typezone;codgeo;variable;annee;valeur\n"
        "CC Faucigny-Glières;epci;;e2e_epci;2022;123,5\n"  # by its label
        ";EPCI;200066793;e2e_epci;2022;4000\n",  # the Grand Annecy, by its code
        encoding="utf-8",
    )
    assert "2 read, 2 published, 0 rejected" in stack.ingest_file(path)
    status, body = post(
        stack.url("ingestor", "/observations"),
        json.dumps(
            [{"indicateur": "e2e_epci", "niveau": "departement", "code": "74",
              "annee": 2022, "valeur": 9999}]
        ).encode(),
    )  # fmt: skip
    assert status == 202 and body["accepted"] == 1

    def served() -> dict | None:
        rows = get_json(
            stack.url("api", "/indicateurs?niveau=epci&departement=74&indicateur=e2e_epci")
        )
        [dep] = get_json(stack.url("api", "/indicateurs?departement=74&indicateur=e2e_epci")) or [
            None
        ]
        found = {r["code"]: r for r in rows}
        if len(found) == 2 and dep is not None:
            return {**found, "74": dep}
        return None

    found = eventually(served, 60, "the published values in the API")
    assert (found["200000172"]["valeur"], found["200000172"]["origine"]) == (123.5, "publiee")
    assert (found["200066793"]["valeur"], found["200066793"]["origine"]) == (4000, "publiee")
    assert (found["74"]["valeur"], found["74"]["origine"]) == (9999, "publiee")
    assert get_json(stack.url("api", "/indicateurs?indicateur=e2e_epci")) == []  # France: none


def test_a_departement_is_served_the_sum_of_its_epcis_published_values(
    stack: Stack, tmp_path: Path
) -> None:
    """The Territoire de Belfort's three EPCIs, published by file: the
    département is served their sum (catalogue: ges, somme_epci)."""
    path = tmp_path / "pcaet_belfort.csv"
    path.write_text(
        "niveau,code,indicateur,annee,valeur\n"
        "epci,200069052,ges,2023,10.5\n"
        "epci,200069060,ges,2023,10.5\n"
        "epci,249000241,ges,2023,1\n",
        encoding="utf-8",
    )
    assert "3 read, 3 published, 0 rejected" in stack.ingest_file(path)

    def summed() -> dict | None:
        rows = get_json(
            stack.url("api", "/indicateurs?niveau=departement&departement=90&indicateur=ges")
        )
        return rows[0] if rows and rows[0]["origine"] == "somme_epci" else None

    row = eventually(summed, 60, "the département's sum of its EPCIs")
    assert (row["valeur"], row["complet"]) == (22, True)
