"""Paging, CSV and conditional answers of GET /indicateurs, on the Gironde's
communes (more rows than a page): totals, next links that visit each row
once, CSV of every row whatever the page size, 304 while unchanged, CORS."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from common.referential import load
from services.api.app import create_app, read_only_engine

GIRONDE = sorted(c.code for c in load().communes.values() if c.departement == "33")
COMMUNES = "/indicateurs?niveau=commune&departement=33&indicateur=pop"


@pytest.fixture
def seeded(store, obs, database_url) -> str:
    store.apply([obs(code, f"{i}.5") for i, code in enumerate(GIRONDE)])
    return database_url


def client(database_url: str, **options: object) -> TestClient:
    return TestClient(create_app(read_only_engine(database_url, 2), **options))  # type: ignore[arg-type]


def test_pages_say_the_total_and_link_the_next_until_every_row_is_seen(seeded: str) -> None:
    api, seen, url = client(seeded), [], f"{COMMUNES}&limit=100"
    while url:
        page = api.get(url)
        assert page.status_code == 200 and page.headers["X-Total-Count"] == str(len(GIRONDE))
        seen += [row["code"] for row in page.json()]
        link = page.headers.get("Link")
        url = link.split(">")[0].removeprefix("<") if link else ""
        assert not link or link.endswith('rel="next"')
    assert seen == GIRONDE  # in order, each once
    beyond = api.get(f"{COMMUNES}&offset=5000")
    assert beyond.json() == [] and beyond.headers["X-Total-Count"] == str(len(GIRONDE))
    assert "Link" not in beyond.headers


def test_csv_holds_every_row_whatever_the_page_size(seeded: str) -> None:
    api = client(seeded)
    answer = api.get(f"{COMMUNES}&format=csv")
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == len(GIRONDE) > 500  # more than a page, every one
    assert [r["code"] for r in rows] == GIRONDE
    assert Decimal(rows[1]["valeur"]) == Decimal("1.5") and rows[1]["complet"] == "true"
    french = api.get(f"{COMMUNES}&format=csv-fr")
    text = french.content.decode("utf-8")
    assert text.startswith("\ufeff")
    parsed = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff")), delimiter=";"))
    assert parsed[1]["valeur"] == "1,5" and parsed[1]["complet"] == "oui"
    assert len(api.get(f"{COMMUNES}&format=csv&limit=10").text.splitlines()) == 11


@pytest.mark.parametrize("cache_bytes", [0, 2**20], ids=["no cache", "cache"])
def test_an_unchanged_answer_is_304_until_the_data_changes(
    seeded: str, store, obs, cache_bytes: int
) -> None:
    with client(seeded, cache_bytes=cache_bytes) as api:
        first = api.get(COMMUNES)
        tag = first.headers["ETag"]
        for _ in range(2):  # the second may come from the cache
            again = api.get(COMMUNES, headers={"If-None-Match": tag})
            assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", tag)
        assert api.get(COMMUNES, headers={"If-None-Match": '"other"'}).status_code == 200
        store.apply([obs(GIRONDE[0], "99", 2)])
        changed = api.get(COMMUNES, headers={"If-None-Match": tag, "Cache-Control": "no-cache"})
        assert changed.status_code == 200 and changed.headers["ETag"] != tag


def test_cors_answers_the_configured_origins_only(seeded: str) -> None:
    api = client(seeded, cors_origins=["https://collectivite.example.fr"])
    allowed = api.get(COMMUNES, headers={"Origin": "https://collectivite.example.fr"})
    assert allowed.headers["access-control-allow-origin"] == "https://collectivite.example.fr"
    assert "X-Total-Count" in allowed.headers["access-control-expose-headers"]
    other = api.get(COMMUNES, headers={"Origin": "https://ailleurs.example.com"})
    assert "access-control-allow-origin" not in other.headers
