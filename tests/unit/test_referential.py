from __future__ import annotations

from collections import defaultdict

from itte.referential import load


def test_2026_edition_counts() -> None:
    ref = load()
    assert ref.version == "@etalab/decoupage-administratif@6.0.0"
    assert len(ref.communes) == 34_969
    assert len(ref.epci) == 1_255
    assert sum(1 for c in ref.communes.values() if c.epci is None) == 98


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
