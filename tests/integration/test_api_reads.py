"""GET /indicateurs reads through statements compiled once per shape of
query and an asyncio pool: whatever the order of the requests, each gets the
rows of its own filters, exactly what the statement built for it alone
returns through the engine."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.referential import load
from services.api.app import create_app, libpq_url, read_only_engine
from services.api.models import to_public
from services.api.reads.indicateurs import Filters, Statements, build, page
from services.api.reads.pool import ReadPool

REF = load()
PLACES = ["33063", "33069", "74010", "74029", "01010"]
EPCIS = sorted({REF.communes[c].epci for c in PLACES if REF.communes[c].epci})


@pytest.fixture
def seeded(store, obs, database_url) -> str:
    store.apply(
        [
            obs(code, str(i + year), indicateur=ind, annee=year, rid=f"{ind}{year}{code}")
            for i, code in enumerate(PLACES)
            for ind in ("pop", "co2")
            for year in (2023, 2024)
        ]
    )
    return database_url


def pool_of(database_url: str) -> ReadPool:
    return ReadPool(libpq_url(read_only_engine(database_url, 1)), 1)


filters = st.builds(
    Filters,
    commune=st.sampled_from([None, *PLACES]),
    epci=st.sampled_from([None, *EPCIS]),
    departement=st.sampled_from([None, "33", "74", "01", "2A"]),
    region=st.sampled_from([None, "75", "84"]),
    niveau=st.sampled_from([None, "commune", "epci", "departement", "region", "france"]),
    indicateur=st.sampled_from([None, "pop", "co2", "absent"]),
    annee=st.sampled_from([None, 2023, 2024]),
    sous_champ=st.sampled_from([None, "total", "x"]),
    limit=st.integers(1, 5),
    offset=st.integers(0, 6),
)


# One for every example: each shape is compiled by the first request of it,
# and served to the following ones, with their values.
SHARED = Statements()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(asked=st.lists(filters, min_size=1, max_size=8), offset=st.integers(0, 6))
def test_each_request_reads_the_rows_of_its_own_filters(
    seeded: str, asked: list[Filters], offset: int
) -> None:
    asked += [replace(f, offset=offset, limit=(f.limit or 1) + 1) for f in asked]  # same shapes
    engine = read_only_engine(seeded, 1)
    statements, pool = SHARED, pool_of(seeded)

    async def through_the_pool() -> list[list[dict]]:
        await pool.open()
        try:
            return [
                [r.model_dump() for r in (await page(pool, statements, f, exact=True))[0]]
                for f in asked
            ]
        finally:
            await pool.close()

    got = asyncio.run(through_the_pool())
    with engine.connect() as conn:
        expected = [
            [to_public(r, exact=True).model_dump() for r in conn.execute(build(f))] for f in asked
        ]
    engine.dispose()
    assert got == expected


def test_the_pool_serves_the_app_while_it_runs_and_its_totals_count(seeded: str) -> None:
    app = create_app(read_only_engine(seeded, 2))
    with TestClient(app) as client:  # the lifespan opens the pool
        answer = client.get("/indicateurs?niveau=commune&indicateur=pop&annee=2024&limit=2")
        assert app.state.read_pool._pool is not None
    assert answer.status_code == 200 and answer.headers["X-Total-Count"] == str(len(PLACES))
    assert [r["code"] for r in answer.json()] == sorted(PLACES)[:2]
    assert app.state.read_pool._pool is None  # closed with the app


def test_a_total_past_the_last_page_is_counted(seeded: str) -> None:
    statements, pool = Statements(), pool_of(seeded)
    past = Filters(niveau="commune", indicateur="pop", annee=2024, limit=2, offset=50)
    rows, total = asyncio.run(page(pool, statements, past, exact=False))
    assert rows == [] and total == len(PLACES)
    rows, total = asyncio.run(page(pool, statements, replace(past, offset=4), exact=False))
    assert len(rows) == 1 and total == len(PLACES)


def end_other_connections(database_url: str) -> int:
    """What a database restart does to the pools: every other session ended."""
    with psycopg.connect(libpq_url(read_only_engine(database_url, 1)), autocommit=True) as conn:
        ended = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(ended[0]) if ended else 0


def test_after_a_restart_the_first_requests_are_answered_not_503(seeded: str) -> None:
    app = create_app(read_only_engine(seeded, 2))
    with TestClient(app) as client:
        for path in ("/indicateurs?departement=33", "/readyz", "/territoires/departement/33"):
            assert client.get(path).status_code == 200  # a connection of each pool in use
        assert end_other_connections(seeded) >= 2
        for path in ("/indicateurs?departement=33", "/readyz", "/territoires/departement/33"):
            assert client.get(path).status_code == 200, path
