"""The API's response cache never serves what a commit has changed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from common import migrations
from services.api.app import create_app, read_only_engine

DEPARTEMENT_33 = {"departement": "33", "indicateur": "pop"}


@pytest.fixture
def client(store, obs, database_url) -> Iterator[TestClient]:
    store.apply([obs("33063", "100")])
    engine = read_only_engine(database_url, pool_size=2)
    migrations.require_current(engine)
    with TestClient(create_app(engine, cache_bytes=1 << 20)) as client:  # runs the lifespan
        wait_until(lambda: hits_after(client, DEPARTEMENT_33) > 0)  # the listener is up
        yield client


def hits() -> float:
    return REGISTRY.get_sample_value("itte_api_cache_lookups_total", {"result": "hit"}) or 0.0


def hits_after(client: TestClient, params: dict[str, str], **headers: str) -> float:
    before = hits()
    client.get("/indicateurs", params=params, headers=headers).raise_for_status()
    return hits() - before


def value(client: TestClient) -> float:
    return client.get("/indicateurs", params=DEPARTEMENT_33).json()[0]["valeur"]


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_repeated_reads_are_served_from_memory(client: TestClient) -> None:
    assert hits_after(client, DEPARTEMENT_33) == 1
    assert hits_after(client, {"departement": "33"}) == 0  # another query: computed once
    assert hits_after(client, {"departement": "33"}) == 1
    assert hits_after(client, DEPARTEMENT_33, **{"Cache-Control": "no-cache"}) == 0


def test_a_commit_by_the_aggregator_is_served_at_once(client: TestClient, store, obs) -> None:
    assert value(client) == 100
    store.apply([obs("33063", "250", version=2)])
    # The notification travels on its own connection: allow it a moment, no more.
    started = time.monotonic()
    wait_until(lambda: value(client) == 250, timeout=2)
    assert time.monotonic() - started < 2


def test_any_writer_invalidates_even_plain_sql(client: TestClient, database_url: str) -> None:
    assert value(client) == 100
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE aggregates SET valeur = 7 WHERE niveau = 'departement'")
    wait_until(lambda: value(client) == 7, timeout=2)


def test_while_the_listener_is_cut_off_reads_go_to_the_database(
    client: TestClient, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN%' OR query = 'SELECT 1'"
        )
        # A change made while nobody listens must still be seen.
        conn.execute("UPDATE aggregates SET valeur = 8 WHERE niveau = 'departement'")
    wait_until(lambda: value(client) == 8, timeout=10)
    wait_until(lambda: hits_after(client, DEPARTEMENT_33) == 1, timeout=15)  # listening again
    assert value(client) == 8


def test_a_typology_is_kept_until_the_data_changes_then_computed_again(
    client: TestClient, store, obs
) -> None:
    """Three départements by their `pop`; the Haute-Savoie is moved from the
    Gironde's group to the Nord's by a correction."""
    store.apply(
        [obs("74010", "120", rid="annecy"), obs("59350", "9000", rid="lille")]
    )  # 33: 100, 74: 120, 59: 9,000
    typologie = {"niveau": "departement", "indicateurs": "pop", "annee": 2024, "k": 2,
                 "couverture_min": 0.001}  # fmt: skip

    def groups() -> set[frozenset[str]]:
        answer = client.get("/typologies", params=typologie).json()
        return {frozenset(m["code"] for m in g["membres"]) for g in answer["groupes"]}

    def served_from_memory() -> bool:
        before = hits()
        grouped = groups()
        return hits() == before + 1 and grouped == {frozenset({"33", "74"}), frozenset({"59"})}

    # The commit's notification may arrive after a first computation has been
    # kept, and rightly drop it: wait for a read served from memory.
    wait_until(served_from_memory)
    comparer = {"indicateurs": "pop", "annee": 2024, "k": 2, "couverture_min": 0.001}
    assert (
        client.get("/territoires/departement/74/comparaison", params=comparer).json()["groupe"][
            "taille"
        ]
        == 2
    )

    store.apply([obs("74010", "8800", version=2, rid="annecy")])
    wait_until(lambda: groups() == {frozenset({"33"}), frozenset({"59", "74"})}, timeout=2)
    wait_until(
        lambda: (
            client.get("/territoires/departement/74/comparaison", params=comparer).json()["rangs"][
                0
            ]["valeur"]
            == 8800
        ),
        timeout=2,
    )


def test_a_commit_drops_only_the_answers_that_show_what_it_changed(
    client: TestClient, store, obs, database_url: str
) -> None:
    """The aggregator announces each indicator and year it wrote: answers on
    other indicators, or on other years, stay in memory (issue #27)."""
    store.apply([obs("33063", "5", indicateur="co2", rid="co2"), obs("33063", "1", annee=2023)])
    pop_2024 = {**DEPARTEMENT_33, "annee": "2024"}
    pop_2023 = {**DEPARTEMENT_33, "annee": "2023"}
    co2 = {"departement": "33", "indicateur": "co2"}
    every = {"departement": "33"}

    def all_kept() -> bool:
        return all(hits_after(client, p) == 1 for p in (pop_2024, pop_2023, co2, every))

    wait_until(all_kept)  # the commit above may drop a first computation
    store.apply([obs("33063", "250", version=2)])  # pop, 2024
    wait_until(lambda: hits_after(client, pop_2024) == 0, timeout=2)
    assert client.get("/indicateurs", params=pop_2024).json()[0]["valeur"] == 250
    assert hits_after(client, pop_2023) == 1  # another year of pop: kept
    assert hits_after(client, co2) == 1  # another indicator: kept
    assert hits_after(client, every) == 0  # shows pop 2024 too: computed again
    assert hits_after(client, DEPARTEMENT_33) == 0  # every year of pop: computed again
    client.get("/indicateurs/catalogue").raise_for_status()
    store.apply([obs("33063", "260", version=3)])  # aggregates only: the catalogue is kept
    wait_until(lambda: hits_after(client, pop_2024) == 0, timeout=2)
    assert hits_after_path(client, "/indicateurs/catalogue") == 1

    with psycopg.connect(database_url, autocommit=True) as conn:  # any other writer
        conn.execute("UPDATE aggregates SET valeur = valeur WHERE indicateur = 'co2'")
    wait_until(lambda: hits_after(client, co2) == 0, timeout=2)
    assert hits_after(client, pop_2023) == 0  # the table named: everything dropped


def hits_after_path(client: TestClient, path: str) -> float:
    before = hits()
    client.get(path).raise_for_status()
    return hits() - before
