"""The lean reading of GET /indicateurs (services/api/routes/lean.py)
answers every query exactly as the FastAPI route does: status, body and
headers, over any query string, on real Postgres; and it does answer the
plain ones itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.referential import load
from services.api.app import create_app, read_only_engine
from services.api.routes import lean

GIRONDE = sorted(c.code for c in load().communes.values() if c.departement == "33")[:40]
# Values each parameter may take: valid, at and past their bounds, of
# another spelling FastAPI also reads, hostile.
VALUES = {
    "commune": ["33063", "2a004", "2A004", "3306", "33063 ", "", "\x00"],
    "epci": ["243300316", "24330031", "2433003160", "abc"],
    "departement": ["33", "2a", "2B", "974", "3", "+33", "33\x00"],
    "region": ["75", "750", "7", "x"],
    "niveau": ["commune", "epci", "departement", "region", "france", "pays", "COMMUNE"],
    "indicateur": ["pop", "co2", "x" * 200, "x" * 201, "é", "%", "a\x00", ""],
    "sous_champ": ["total", "autre", ""],
    "annee": [
        *("2024", "2023", "1900", "2100", "1899", "2101", "02024", "+2024", "2024.0", "-1"),
        *("derniere", "Derniere"),
    ],
    "annee_min": ["2023", "2024", "1899", "x"],
    "annee_max": ["2023", "2100", "2101"],
    "limit": ["1", "3", "10000", "10001", "0", "007", "-1", "1e3"],
    "offset": ["0", "2", "39", "2147483647", "2147483648", "00", "-0"],
    "exact": ["true", "false", "True", "1", "yes", "maybe"],
    "format": ["json", "csv", "csv-fr", "xml"],
    "autre": ["1"],
}


def without_lean(app: FastAPI) -> FastAPI:
    kept = [r for r in app.router.routes if not is_lean(r)]
    assert len(kept) == len(app.router.routes) - 1
    app.router.routes[:] = kept
    return app


def is_lean(route: object) -> bool:
    return isinstance(getattr(route, "app", None), lean.LeanIndicateurs)


@pytest.fixture(scope="module")
def clients(database_factory: Any) -> Iterator[tuple[TestClient, TestClient]]:
    from decimal import Decimal

    from common import catalogue
    from schemas.clean import CleanObservation
    from services.aggregator.rules import AggregationRules
    from services.aggregator.store import AggregateStore
    from tests.conftest import TEST_CATALOGUE

    database_url = database_factory()
    store = AggregateStore(
        database_url, load(), AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))
    )
    store.apply(
        [
            CleanObservation(
                record_id=f"r{i}-{annee}",
                indicateur="pop",
                annee=annee,
                commune=code,
                commune_source=code,
                valeur=Decimal(f"{i}.25"),
                version=1,
            )
            for i, code in enumerate(GIRONDE)
            for annee in (2023, 2024)
        ]
    )
    store.close()
    both = [create_app(read_only_engine(database_url, 2)) for _ in range(2)]
    with TestClient(both[0]) as lean_client, TestClient(without_lean(both[1])) as full_client:
        yield lean_client, full_client


def answer(client: TestClient, url: str) -> tuple[int, bytes, dict[str, str]]:
    got = client.get(url)
    headers = {k: v for k, v in got.headers.items() if k not in ("date", "server")}
    return got.status_code, got.content, headers


queries = st.lists(
    st.sampled_from(sorted(VALUES)).flatmap(
        lambda name: st.tuples(st.just(name), st.sampled_from(VALUES[name]))
    ),
    max_size=5,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=queries)
def test_the_lean_route_answers_as_fastapi_does(
    clients: tuple[TestClient, TestClient], query: list[tuple[str, str]]
) -> None:
    lean_client, full_client = clients
    url = "/indicateurs?" + "&".join(f"{k}={quote(v)}" for k, v in query)
    assert answer(lean_client, url) == answer(full_client, url)


def test_plain_queries_are_answered_by_the_lean_route(
    clients: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    lean_client, _ = clients
    fallen: list[str] = []
    route: Any = next(r for r in lean_client.app.router.routes if is_lean(r))  # type: ignore[attr-defined]
    full = route.app.full

    async def noted(scope: Any, receive: Any, send: Any) -> None:
        fallen.append(scope["query_string"].decode())
        await full(scope, receive, send)

    monkeypatch.setattr(route.app, "full", noted)
    plain = ["", "departement=33", "niveau=commune&departement=33&limit=3&offset=3&exact=true"]
    for query in plain:
        assert lean_client.get(f"/indicateurs?{query}").status_code == 200
    page = lean_client.get("/indicateurs?niveau=commune&departement=2a&annee=2024&limit=3")
    assert page.status_code == 200 and page.json() == []
    rows = lean_client.get("/indicateurs?niveau=commune&departement=33&annee=2024&limit=3")
    assert [r["code"] for r in rows.json()] == GIRONDE[:3]
    assert rows.headers["X-Total-Count"] == str(len(GIRONDE))
    assert "offset=3" in rows.headers["Link"]
    assert fallen == []
    for doubtful in ("format=csv", "annee=+2024", "limit=10001", "annee=2024&annee=2023"):
        lean_client.get(f"/indicateurs?{doubtful}")
    assert fallen == ["format=csv", "annee=+2024", "limit=10001", "annee=2024&annee=2023"]
