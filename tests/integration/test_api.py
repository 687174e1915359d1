from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from common import migrations
from common.referential import load
from services.api.app import create_app, read_only_engine

EPCI_01_74 = "200070852"


@pytest.fixture
def client(store, obs, database_url) -> TestClient:
    store.apply(
        [
            obs("01010", "1174"),
            obs("74029", "423"),
            obs("74010", "132117"),
            obs("33063", "261804"),
            obs("33063", "7", indicateur="co2", annee=2023),
            obs("74042", None),
        ]
    )
    engine = read_only_engine(database_url, pool_size=2)
    migrations.require_current(engine)
    return TestClient(create_app(engine))


def test_departement_alone_returns_the_departement(client: TestClient) -> None:
    rows = client.get("/indicateurs", params={"departement": "33"}).json()
    assert {(r["niveau"], r["code"], r["indicateur"], r["valeur"]) for r in rows} == {
        ("departement", "33", "co2", 7),
        ("departement", "33", "pop", 261804),
    }
    row = next(r for r in rows if r["indicateur"] == "pop")
    assert row["nom"] == "Gironde"
    assert row["communes_renseignees"] == 1
    assert row["communes_total"] == sum(
        1 for c in load().communes.values() if c.departement == "33"
    )
    assert row["complet"] is False and 0 < row["couverture"] < 1


def test_epci_of_a_departement_includes_those_spanning_it(client: TestClient) -> None:
    rows = client.get(
        "/indicateurs", params={"niveau": "epci", "departement": "74", "indicateur": "pop"}
    ).json()
    by_code = {r["code"]: r["valeur"] for r in rows}
    assert by_code[EPCI_01_74] == 1174 + 423  # the Ain member counts too
    assert by_code[load().communes["74010"].epci] == 132117


def test_filters_by_year_indicator_and_commune(client: TestClient) -> None:
    rows = client.get("/indicateurs", params={"commune": "33063", "annee": 2023}).json()
    assert [(r["indicateur"], r["valeur"], r["unite"]) for r in rows] == [("co2", 7, "u")]
    assert (
        client.get("/indicateurs", params={"region": "84", "indicateur": "pop"}).json()[0]["valeur"]
        == 1174 + 423 + 132117
    )


def test_secret_cell_is_null_not_zero(client: TestClient) -> None:
    [row] = client.get("/indicateurs", params={"commune": "74042"}).json()
    assert row["valeur"] is None and row["communes_renseignees"] == 0


def test_france_by_default(client: TestClient) -> None:
    rows = client.get("/indicateurs", params={"indicateur": "pop"}).json()
    assert [(r["niveau"], r["valeur"]) for r in rows] == [("france", 1174 + 423 + 132117 + 261804)]


@pytest.mark.parametrize(
    "params", [{"departement": "xx"}, {"niveau": "canton"}, {"commune": "123"}, {"annee": 3000}]
)
def test_bad_filters_get_a_clear_422(client: TestClient, params: dict) -> None:
    response = client.get("/indicateurs", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == next(iter(params))


def test_health_metrics_and_docs(client: TestClient) -> None:
    assert client.get("/health").json()["referential"].endswith("6.0.0")
    client.get("/indicateurs")
    metrics = client.get("/metrics/").text
    # Each request counted once, in the family both HTTP services share.
    assert 'itte_http_requests_total{handler="/indicateurs",method="GET",status="200"}' in metrics
    assert "itte_api_requests_total" not in metrics
    assert client.get("/docs").status_code == 200


def test_api_connection_is_read_only(database_url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import InternalError

    engine = read_only_engine(database_url, pool_size=1)
    with pytest.raises(InternalError, match="read-only"), engine.connect() as conn:
        conn.execute(text("DELETE FROM aggregates"))
