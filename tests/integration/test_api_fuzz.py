"""The query API against real Postgres: exact decimals on request, and no
5xx whatever the query (OpenAPI fuzzing plus the issue's regressions)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from common import catalogue, migrations
from common.referential import load
from schemas.clean import CleanObservation
from services.aggregator.rules import AggregationRules
from services.aggregator.store import AggregateStore
from services.api.app import create_app, read_only_engine
from tests.conftest import TEST_CATALOGUE

# 30 significant digits: the bounds of schemas/limits.py, where floats round.
BIG = "123456789012345678901.123456789"


@pytest.fixture(scope="module")
def app(database_factory: Callable[[], str]) -> Any:
    database_url = database_factory()
    rules = AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))
    store = AggregateStore(database_url, load(), rules)
    store.apply([observation("33063", BIG, "r1"), observation("33064", "-0.000000001", "r2")])
    store.close()
    engine = read_only_engine(database_url, pool_size=2)
    migrations.require_current(engine)
    return create_app(engine)


def observation(commune: str, valeur: str, record_id: str) -> CleanObservation:
    return CleanObservation(
        record_id=record_id,
        indicateur="pop",
        annee=2024,
        commune=commune,
        commune_source=commune,
        valeur=Decimal(valeur),
        version=1,
    )


def test_exact_values_on_request(app: Any) -> None:
    client = TestClient(app)
    params = {"departement": "33", "indicateur": "pop"}
    [exact] = client.get("/indicateurs", params={**params, "exact": "true"}).json()
    assert exact["valeur"] == "123456789012345678901.123456788"  # the sum, every digit
    [rounded] = client.get("/indicateurs", params=params).json()
    assert rounded["valeur"] == pytest.approx(1.2345678901234568e20)


@pytest.mark.parametrize(
    "query",
    [
        "offset=18446744073709551616",
        "offset=-1",
        "limit=0",
        "limit=10001",  # a page's memory is bounded (bench/page_memory.py)
        "indicateur=%00",
        "sous_champ=" + "x" * 5000,
        "annee=[]",
        "annee=99999999999999999999999",
        "niveau=[[[[]]]]",
        "departement=%FF",
    ],
)
def test_odd_queries_are_422_not_500(app: Any, query: str) -> None:
    assert TestClient(app).get(f"/indicateurs?{query}").status_code == 422


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/indicateurs", "GET"),
        ("/indicateurs/catalogue", "GET"),
        ("/indicateurs/changements", "GET"),
        ("/territoires", "GET"),
        ("/territoires/{niveau}/{code}", "GET"),
        ("/territoires/{niveau}/{code}/comparaison", "GET"),
        ("/territoires/{niveau}/{code}/objectifs", "GET"),
        ("/typologies", "GET"),
        ("/health", "GET"),
    ],
)
def test_no_query_makes_the_api_fail(app: Any, path: str, method: str) -> None:
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    def no_failure(case: Any) -> None:
        # As for the ingestor: no 5xx and answers as declared; the checks that
        # guess statuses of allowed or forbidden data are left out.
        case.call_and_validate(excluded_checks=[negative_data_rejection, positive_data_acceptance])

    no_failure()


@pytest.mark.parametrize(
    ("path", "path_parameters", "query"),
    [
        # What the fuzzing found once: a refusal in words must fit the declared 422.
        ("/territoires/{niveau}/{code}/comparaison", {"niveau": "france", "code": "FR"},
         {"annee": 1900, "indicateurs": "epci"}),
        ("/typologies", {}, {"niveau": "epci", "annee": 1900, "indicateurs": "pop"}),
        ("/typologies", {}, {"niveau": "epci", "annee": 1900, "indicateurs": "absent"}),
    ],
)  # fmt: skip
def test_a_refusal_in_words_is_the_declared_422(
    app: Any, path: str, path_parameters: dict, query: dict
) -> None:
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path]["GET"]
    case = operation.Case(path_parameters=path_parameters, query=query)
    response = case.call_and_validate(
        excluded_checks=[negative_data_rejection, positive_data_acceptance]
    )
    assert response.status_code == 422 and isinstance(response.json()["detail"], str)
