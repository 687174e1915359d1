"""Finding a territory by name or code, and its parent and members."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app, read_only_engine


@pytest.fixture
def api(database_url: str) -> TestClient:
    return TestClient(create_app(read_only_engine(database_url, 2)))


def test_a_name_finds_the_exact_name_first_then_the_widest(api: TestClient) -> None:
    found = api.get("/territoires", params={"q": "annecy"}).json()
    assert [(t["niveau"], t["code"]) for t in found[:2]] == [
        ("commune", "74010"),  # named exactly so
        ("epci", "200066793"),  # CA du Grand Annecy
    ]
    assert api.get("/territoires", params={"q": "74"}).json()[0] == {
        "niveau": "departement",
        "code": "74",
        "nom": "Haute-Savoie",
    }
    for odd in ("%", "_", "\\", "100%_\\"):  # wildcards are plain characters
        assert api.get("/territoires", params={"q": odd}).status_code == 200
    assert api.get("/territoires", params={"q": "a\x00b"}).status_code == 422


@pytest.mark.parametrize(
    ("niveau", "code", "parent", "membres", "departement"),
    [
        ("commune", "74010", ("epci", "200066793"), None, "74"),
        ("commune", "97502", ("departement", "975"), None, "975"),  # outside any EPCI
        ("commune", "2A004", ("epci", "242010056"), None, "2A"),
        ("epci", "200066793", ("departement", "74"), "commune", "74"),
        ("departement", "33", ("region", "75"), "epci", None),
        ("region", "84", ("france", "FR"), "departement", None),
        ("france", "FR", None, "region", None),
    ],
)
def test_each_territory_knows_its_parent_and_its_members(
    api: TestClient,
    niveau: str,
    code: str,
    parent: tuple | None,
    membres: str | None,
    departement: str | None,
) -> None:
    fiche = api.get(f"/territoires/{niveau}/{code}").json()
    found = fiche["parent"] and (fiche["parent"]["niveau"], fiche["parent"]["code"])
    assert (found, fiche["membres"]) == (parent, membres)
    lies_in = fiche["departement"] and fiche["departement"]["code"]
    assert lies_in == departement


def test_a_code_in_any_case_finds_its_territory(api: TestClient) -> None:
    corsica = api.get("/territoires/commune/2a004").json()
    assert (corsica["code"], corsica["parent"]["niveau"]) == ("2A004", "epci")
    assert api.get("/territoires/france/fr").json()["code"] == "FR"
    objectifs = api.get("/territoires/departement/2b/objectifs").json()
    assert objectifs["territoire"]["code"] == "2B" and objectifs["population"] > 0


def test_an_unknown_territory_is_404_and_a_bad_code_422(api: TestClient) -> None:
    assert api.get("/territoires/commune/99999").status_code == 404
    assert api.get("/territoires/commune/a%00b").status_code == 422
    assert api.get("/territoires/canton/33").status_code == 422


def test_the_page_and_its_vendored_library_are_served(api: TestClient) -> None:
    page = api.get("/")
    assert page.status_code == 200 and '<html lang="fr">' in page.text
    assert "uPlot" in api.get("/static/vendor/uplot/uPlot.iife.min.js").text
    assert "MIT" in api.get("/static/vendor/uplot/LICENSE").text
