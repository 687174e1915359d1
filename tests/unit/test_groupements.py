"""A grouping's list of communes, read whole or refused naming every bad line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.referential import load
from services.api.groupements import Refused, groupement

REF = load()


def test_codes_former_codes_arrondissements_and_a_header_are_read() -> None:
    found = groupement(
        "scot-annecy",
        " SCoT du bassin annécien ",
        ["codgeo;libelle\n", "74010;Annecy\n", "\n", '"01340",Arboys\n', "75101\t1er\n", "1001\n"],
        REF,
    )
    # 1001: a spreadsheet dropped the leading zero of 01001.
    assert found.communes == {"74010", "01015", "75056", "01001"}
    assert found.nom == "SCoT du bassin annécien"


def test_every_line_that_names_no_commune_is_named() -> None:
    with pytest.raises(Refused) as refused:
        groupement("g", "G", ["74010", "99999", "55273", "x" * 500, "2C001"], REF)
    problems = refused.value.problems
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4", "line 5"]
    assert "unknown_code" in problems[0]
    assert "ambiguous_code" in problems[1]  # a former code now in two communes
    assert "invalid_commune" in problems[2] and len(problems[2]) < 200  # cut short


@pytest.mark.parametrize(
    ("code", "nom"), [("Majuscule", "N"), ("", "N"), ("a" * 41, "N"), ("g", " "), ("g", "a\x00")]
)
def test_a_code_or_name_out_of_bounds_is_refused(code: str, nom: str) -> None:
    with pytest.raises(Refused):
        groupement(code, nom, ["74010"], REF)


def test_an_empty_list_is_refused() -> None:
    with pytest.raises(Refused, match="no commune"):
        groupement("g", "G", ["commune\n", "\n"], REF)


@given(st.lists(st.text(max_size=30), max_size=20), st.text(max_size=50), st.text(max_size=220))
def test_any_text_gives_a_grouping_of_current_communes_or_a_refusal(lines, code, nom) -> None:
    try:
        found = groupement(code, nom, lines, REF)
    except Refused as refused:
        assert refused.problems
    else:
        assert found.communes and found.communes <= REF.communes.keys()
