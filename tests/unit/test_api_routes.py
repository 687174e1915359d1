"""The API's routes take their dependencies from ``app.state`` through
``deps.py``: one router mounts alone, and a test replaces one dependency
without a database."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.api import deps
from services.api.app import read_only_engine
from services.api.models import Territoire
from services.api.routes import sante, territoires

NOWHERE = "postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=2"


def test_one_router_mounts_alone_with_its_state() -> None:
    app = FastAPI()
    app.include_router(sante.router)
    app.state.engine = read_only_engine(NOWHERE, 1)
    client = TestClient(app)
    assert client.get("/livez").json() == {"status": "ok", "service": "api"}
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "database unavailable" in ready.json()["reason"]
    assert set(app.openapi()["paths"]) == {"/livez", "/readyz", "/health"}


def test_a_dependency_is_replaced_without_a_database() -> None:
    app = FastAPI()
    app.include_router(territoires.router)
    app.state.engine = read_only_engine(NOWHERE, 1)  # never reached below
    france = Territoire(niveau="france", code="FR", nom="France")
    app.dependency_overrides[deps.territory] = lambda: france
    answer = TestClient(app).get("/territoires/france/FR")
    assert answer.status_code == 200
    assert answer.json() == {
        "niveau": "france",
        "code": "FR",
        "nom": "France",
        "parent": None,
        "departement": None,
        "membres": "region",
    }


def test_an_unknown_territory_is_a_404_from_the_dependency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = FastAPI()
    app.include_router(territoires.router)
    app.dependency_overrides[deps.engine] = lambda: None
    monkeypatch.setattr(deps.territoires, "find", lambda engine, niveau, code: None)
    answer = TestClient(app).get("/territoires/departement/99")
    assert (answer.status_code, answer.json()) == (404, {"detail": "no such territory"})
