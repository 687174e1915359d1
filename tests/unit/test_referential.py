from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from common.referential import FRANCE, ancestors, epci_coverage, load


def test_2026_edition_counts() -> None:
    ref = load()
    assert ref.version == "@etalab/decoupage-administratif@6.0.0"
    assert len(ref.communes) == 34_969
    assert len(ref.epci) == 1_255
    assert sum(1 for c in ref.communes.values() if c.epci is None) == 98


def test_each_commune_s_chain_is_its_own_territories_shared_with_its_neighbours() -> None:
    ref = load()
    table = ancestors(ref)
    assert ancestors(ref) is table  # made once per referential
    assert table.keys() == ref.communes.keys()
    for c in ref.communes.values():
        above = (("departement", c.departement), ("region", c.region), ("france", FRANCE))
        assert table[c.code] == ((("epci", c.epci),) if c.epci else ()) + above
    # One object a distinct chain (the process's memory: 1.6 MB, not 13).
    distinct = {id(chain) for chain in table.values()}
    assert len(distinct) == len(set(table.values())) < 1_500
    # and one string a département, région or EPCI code.
    assert len({id(c.departement) for c in ref.communes.values()}) == len(ref.departements)
    assert len({id(c.epci) for c in ref.communes.values() if c.epci}) == len(ref.epci)


def test_epci_spanning_several_departements() -> None:
    spans: dict[str, set[str]] = defaultdict(set)
    for c in load().communes.values():
        if c.epci:
            spans[c.epci].add(c.departement)
    assert sum(1 for deps in spans.values() if len(deps) > 1) == 89


def test_former_codes_point_to_current_communes() -> None:
    ref = load()
    assert ref.former_codes["01340"] == "01015"
    assert all(current in ref.communes for current in ref.former_codes.values())
    assert not set(ref.former_codes) & set(ref.communes)


def test_every_former_code_of_the_oldest_edition_is_placed() -> None:
    ref = load()
    fixture = Path(__file__).parents[1] / "data" / "former_codes_0.3.0.txt"
    codes = [line for line in fixture.read_text().splitlines() if not line.startswith("#")]
    assert len(codes) == 107
    placed = [c for c in codes if c in ref.former_codes or c in ref.ambiguous_codes]
    assert placed == codes


def test_a_code_claimed_by_two_communes_is_ambiguous() -> None:
    # Lamarche-en-Woëvre: a former code of 55245, and associated with 55386.
    assert load().ambiguous_codes["55273"] == ("55245", "55386")


def test_the_arrondissements_municipaux_are_parts_of_paris_lyon_and_marseille() -> None:
    ref = load()
    assert len(ref.arrondissements) == 20 + 9 + 16
    assert set(ref.arrondissements.values()) == {"75056", "69123", "13055"}
    assert not set(ref.arrondissements) & (set(ref.communes) | set(ref.former_codes))


def test_names_compare_whatever_their_spelling() -> None:
    from common.referential import name_key

    assert name_key("Saint-Émilion") == name_key("ST EMILION") == name_key("st-émilion")
    assert name_key("Rochelle (La)") == name_key("La Rochelle") == "la rochelle"
    assert name_key("Haÿ-les-Roses (L')") == name_key("L'Haÿ-les-Roses")
    assert name_key(" -  ") == ""


def test_a_label_names_one_commune_or_the_candidates() -> None:
    import pytest

    from common.referential import Unplaced, locate_label

    ref = load()
    assert locate_label("Bordeaux", ref) == "33063"
    assert locate_label("SAINT EMILION", ref) == "33394"
    assert locate_label("Sainte-Colombe", ref, "33") == "33390"
    assert locate_label("Sainte-Colombe", ref, " 5 ") == "05135"  # a short code
    with pytest.raises(Unplaced) as twelve:
        locate_label("Sainte-Colombe", ref)
    assert twelve.value.reason == "ambiguous_label"
    assert "12 communes" in str(twelve.value) and "33390 (Gironde)" in str(twelve.value)
    assert "and 2 more" in str(twelve.value)  # ten named at most
    for unknown, departement in (("Nulle-Part", None), ("Bordeaux", "17"), ("", None)):
        with pytest.raises(Unplaced) as refused:
            locate_label(unknown, ref, departement)
        assert refused.value.reason == "unknown_label"


def test_a_departement_covered_by_its_epcis_holds_their_communes_exactly() -> None:
    ref = load()
    coverage = epci_coverage(ref)
    for departement, epcis in coverage.items():
        of_departement = {c.code for c in ref.communes.values() if c.departement == departement}
        of_epcis = {c.code for c in ref.communes.values() if c.epci in epcis}
        assert of_departement == of_epcis, departement
    for departement in ref.departements.keys() - coverage.keys():  # and only those
        epcis = {c.epci for c in ref.communes.values() if c.departement == departement}
        reaching_out = {c.epci for c in ref.communes.values() if c.departement != departement}
        assert None in epcis or epcis & reaching_out, departement
    # Haute-Savoie's EPCIs reach into Ain; Paris's Métropole du Grand Paris spans four.
    assert "74" not in coverage and "75" not in coverage and "90" in coverage
    assert epci_coverage(ref) is coverage  # made once
