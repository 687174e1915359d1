"""A ratio summed from its EPCIs' terms: what the catalogue takes, and which
départements' rows a published term moves (services/aggregator/epci_sums.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from common.referential import epci_coverage, load
from schemas.catalogue import Catalogue, Indicator
from services.aggregator.epci_sums import EpciSums
from services.aggregator.rules import AggregationRules

REF = load()
BELFORT = "90"


def catalogue(**ratio: Any) -> Catalogue:
    entries = [
        Indicator(id="ges", libelle="GES", agregation="somme", somme_epci=True),
        Indicator(id="hab", libelle="Habitants", agregation="somme", somme_epci=True),
        Indicator(id="pop", libelle="Population", agregation="somme"),
        Indicator(id="r", libelle="Ratio", agregation="ratio", facteur=1000, **ratio),
    ]
    return Catalogue(indicateurs={i.id: i for i in entries})


def test_a_somme_epci_ratio_needs_both_terms_summed_from_epcis() -> None:
    catalogue(numerateur="ges", denominateur="hab", somme_epci=True)  # taken
    with pytest.raises(ValidationError, match="somme_epci on a ratio needs it on pop"):
        catalogue(numerateur="ges", denominateur="pop", somme_epci=True)
    with pytest.raises(ValidationError, match="somme, nombre or ratio"):
        Indicator(id="m", libelle="m", agregation="max", somme_epci=True)


def test_a_term_published_for_an_epci_moves_its_departements_ratio() -> None:
    rules = AggregationRules.from_catalogue(
        catalogue(numerateur="ges", denominateur="hab", somme_epci=True)
    )
    sums = EpciSums.of(rules, REF)
    epci = epci_coverage(REF)[BELFORT][0]
    assert sums.moved([("hab", "total", 2024, "epci", epci)]) == [
        ("hab", "total", 2024, BELFORT),
        ("r", "total", 2024, BELFORT),
    ]
    # Not for a ratio without somme_epci, nor for an EPCI across a border.
    plain = EpciSums.of(
        AggregationRules.from_catalogue(catalogue(numerateur="ges", denominateur="hab")), REF
    )
    assert plain.moved([("ges", "total", 2024, "epci", epci)]) == [("ges", "total", 2024, BELFORT)]
    annecy = REF.communes["74010"].epci
    assert sums.moved([("ges", "total", 2024, "epci", annecy)]) == []
