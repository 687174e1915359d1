"""Downloads as analysts read them (issue #32): the CSV with labels, parents
and sources, Parquet, and the wide table, each read back with pandas as
docs/api.md shows, equal to the JSON rows digit for digit."""

from __future__ import annotations

import io
from decimal import Decimal

import pandas as pd
import pytest

from common import catalogue
from common.referential import load
from services.api.exports import EXPORT_COLUMNS, KEYS
from tests.conftest import TEST_CATALOGUE
from tests.integration.test_api_paging import client

REF = load()
CATALOGUE = catalogue.load(TEST_CATALOGUE)
EPCI = REF.communes["33063"].epci  # Bordeaux Métropole
MEMBERS = sorted(c for c, commune in REF.communes.items() if commune.epci == EPCI)
AREA = {"niveau": "commune", "epci": EPCI}


@pytest.fixture
def seeded(store, obs, database_url) -> str:
    records = []
    for i, code in enumerate(MEMBERS):
        for annee in (2023, 2024):
            records.append(obs(code, f"{i}.{annee % 7}1", annee=annee, rid=f"p{code}{annee}"))
            # A ratio's digits: more than a float holds.
            records.append(obs(code, f"{i}.3333333333333333333", indicateur="co2", annee=annee))
    store.apply(records)
    return database_url


def json_rows(api, **params) -> list[dict]:
    answer = api.get("/indicateurs", params={**params, "exact": "true", "limit": 10_000})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_csv_names_labels_parents_and_sources(seeded: str) -> None:
    api = client(seeded)
    rows = json_rows(api, **AREA)
    answer = api.get("/indicateurs", params={**AREA, "format": "csv"})
    table = pd.read_csv(io.StringIO(answer.text), dtype=str, keep_default_na=False)
    assert list(table.columns) == list(EXPORT_COLUMNS)
    assert len(table) == len(rows) > 2 * 2 * len(MEMBERS)  # pop, co2 and a ratio of them
    for line, row in zip(table.to_dict("records"), rows, strict=True):
        assert line["valeur"] == row["valeur"] and line["code"] == row["code"]
        commune = REF.communes[row["code"]]
        assert (line["epci"], line["departement"], line["region"]) == (
            EPCI,
            commune.departement,
            commune.region,
        )
        indicator = CATALOGUE.indicateurs[row["indicateur"]]
        assert (line["libelle_indicateur"], line["source"]) == (indicator.libelle, indicator.source)
    # An EPCI's parents: its département and région, it lies within one.
    [metropole] = pd.read_csv(
        io.StringIO(api.get("/indicateurs", params={"epci": EPCI, "format": "csv"}).text),
        dtype=str,
        keep_default_na=False,
    ).to_dict("records")[:1]
    assert (metropole["epci"], metropole["departement"], metropole["region"]) == ("", "33", "75")


def test_parquet_holds_the_same_rows_typed(seeded: str) -> None:
    api = client(seeded)
    rows = json_rows(api, **AREA)
    answer = api.get("/indicateurs", params={**AREA, "format": "parquet"})
    assert answer.headers["content-type"] == "application/vnd.apache.parquet"
    table = pd.read_parquet(io.BytesIO(answer.content))
    assert list(table.columns) == list(EXPORT_COLUMNS)
    assert table["annee"].dtype == "int32" and table["complet"].dtype == "bool"
    assert str(table["mis_a_jour"].dtype).startswith("datetime64")
    for line, row in zip(table.to_dict("records"), rows, strict=True):
        assert line["valeur"] == row["valeur"]  # exact text
        assert Decimal(line["valeur"]) == Decimal(row["valeur"])
        assert line["annee"] == row["annee"] and line["communes_total"] == row["communes_total"]
        assert line["mis_a_jour"] == pd.Timestamp(row["mis_a_jour"])
    empty = api.get("/indicateurs", params={**AREA, "indicateur": "tmax", "format": "parquet"})
    assert len(pd.read_parquet(io.BytesIO(empty.content))) == 0
    refused = api.get("/indicateurs", params={"format": "parquet", "forme": "large"})
    assert refused.status_code == 422 and "CSV" in refused.text


@pytest.mark.parametrize("fmt", ["csv", "csv-fr"])
def test_the_wide_table_has_a_column_an_indicator(seeded: str, fmt: str) -> None:
    api = client(seeded)
    rows = json_rows(api, **AREA)
    answer = api.get("/indicateurs", params={**AREA, "format": fmt, "forme": "large"})
    french = fmt == "csv-fr"
    text = answer.content.decode("utf-8").removeprefix("\ufeff")
    table = pd.read_csv(
        io.StringIO(text), dtype=str, keep_default_na=False, sep=";" if french else ","
    )
    assert list(table.columns) == [*KEYS, *sorted({r["indicateur"] for r in rows})]
    assert len(table) == 2 * len(MEMBERS)  # a line a commune and year
    lines = {(line["code"], line["annee"]): line for line in table.to_dict("records")}
    for row in rows:
        cell = lines[(row["code"], str(row["annee"]))][row["indicateur"]]
        assert cell == (row["valeur"].replace(".", ",") if french else row["valeur"])


def test_an_older_edition_downloads_alike(seeded: str) -> None:
    api = client(seeded)
    params = {**AREA, "indicateur": "pop", "millesime": 2019}
    rows = json_rows(api, **params)
    parquet = api.get("/indicateurs", params={**params, "format": "parquet"})
    table = pd.read_parquet(io.BytesIO(parquet.content))
    assert sorted(table["valeur"]) == sorted(r["valeur"] for r in rows)
    assert set(table["millesime"]) == {2019}
    wide = api.get("/indicateurs", params={**params, "format": "csv", "forme": "large"})
    lines = pd.read_csv(io.StringIO(wide.text), dtype=str, keep_default_na=False)
    assert len(lines) == len(rows) and list(lines.columns) == [*KEYS, "pop"]
