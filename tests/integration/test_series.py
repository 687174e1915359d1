"""Years as a series (issue #32, point 3): `annee_min` and `annee_max`
bound them, `annee=derniere` keeps each territory's latest, on the current
edition and on an older one alike; each answer is the matching part of the
whole series, computed here from the unfiltered rows."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import catalogue
from common.referential import load
from schemas.clean import CleanObservation
from services.aggregator.rules import AggregationRules
from services.aggregator.store import AggregateStore
from tests.conftest import TEST_CATALOGUE
from tests.integration.test_api_paging import client

BORDEAUX, MERIGNAC, PESSAC = "33063", "33281", "33318"
YEARS = {BORDEAUX: range(2019, 2025), MERIGNAC: range(2019, 2023), PESSAC: range(2021, 2024)}


@pytest.fixture(scope="module")
def seeded(database_factory) -> str:
    """Each commune's values over its years (the module's reads only read)."""
    url = database_factory()
    rules = AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))
    store = AggregateStore(url, load(), rules)
    store.apply(
        [
            CleanObservation(
                record_id=f"{code}-{annee}",
                indicateur="pop",
                annee=annee,
                commune=code,
                commune_source=code,
                valeur=Decimal(f"{annee - 2000}.{i}"),
                version=1,
            )
            for i, (code, years) in enumerate(YEARS.items())
            for annee in years
        ]
    )
    store.close()
    return url


def rows(api, **params) -> list[dict]:
    answer = api.get("/indicateurs", params={"indicateur": "pop", "exact": "true", **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


AREAS = [{"niveau": "commune", "departement": "33"}, {"departement": "33"}]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    low=st.integers(2017, 2026),
    high=st.integers(2017, 2026),
    area=st.sampled_from(AREAS),
    millesime=st.sampled_from([None, 2019]),
)
def test_a_range_of_years_is_that_part_of_the_series(
    seeded: str, low: int, high: int, area: dict, millesime: int | None
) -> None:
    api = client(seeded)
    edition = {} if millesime is None else {"millesime": millesime}
    whole = rows(api, **area, **edition, limit=10_000)
    part = rows(api, **area, **edition, annee_min=low, annee_max=high, limit=10_000)
    assert part == [r for r in whole if low <= r["annee"] <= high]


@pytest.mark.parametrize("millesime", [None, 2019])
def test_derniere_is_each_territorys_latest_year(seeded: str, millesime: int | None) -> None:
    api = client(seeded)
    edition = {} if millesime is None else {"millesime": millesime}
    latest = rows(api, niveau="commune", departement="33", annee="derniere", **edition)
    assert {(r["code"], r["annee"]) for r in latest} == {
        (code, years[-1]) for code, years in YEARS.items()
    }
    gironde = rows(api, departement="33", annee="derniere", **edition)
    assert [(r["code"], r["annee"]) for r in gironde] == [("33", 2024)]
    # Within a range: the latest year of the range.
    bounded = rows(api, niveau="commune", departement="33", annee="derniere", annee_max=2021)
    assert {(r["code"], r["annee"]) for r in bounded} == {
        (BORDEAUX, 2021),
        (MERIGNAC, 2021),
        (PESSAC, 2021),
    }
    csv = api.get(
        "/indicateurs",
        params={
            "indicateur": "pop",
            "niveau": "commune",
            "departement": "33",
            "annee": "derniere",
            "format": "csv",
        },
    )
    assert csv.status_code == 200 and len(csv.text.strip().splitlines()) == 1 + len(YEARS)


def test_what_a_year_cannot_be_is_refused(seeded: str) -> None:
    api = client(seeded)
    for params in (
        {"annee": "1899"},
        {"annee": "dernière"},
        {"annee": "24"},
        {"annee_min": "1800"},
        {"annee_max": "x"},
    ):
        assert api.get("/indicateurs", params=params).status_code == 422, params
    feed = api.get("/indicateurs/changements", params={"annee": "derniere"})
    assert feed.status_code == 422 and "derniere" in feed.text
    recent = api.get("/indicateurs/changements", params={"annee_min": 2024, "niveau": "commune"})
    assert {r["annee"] for r in recent.json()["changements"]} == {2024}
