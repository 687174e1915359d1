"""Handing observations over between producers (``itte proprietaire``) on
the real Postgres: the new owner's corrections count, the old one's are
refused, the aggregates stay exact, and a batch in flight is waited for."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import psycopg
import pytest

from services.aggregator.ownership import Transfer, count, hand_over
from services.aggregator.store import LOCK_NAMESPACE, lock_bucket
from services.aggregator.verify import check
from tests.integration.test_store import agg


def owned(obs, producteur, commune, valeur, version):
    return obs(commune, valeur, version, rid=f"{producteur}-{commune}-{version}").model_copy(
        update={"producteur": producteur}
    )


def test_after_a_hand_over_only_the_new_owner_changes_the_value(store, obs, database_url):
    store.apply([owned(obs, "ademe", "33063", "4", 1), owned(obs, "ademe", "75056", "3", 1)])
    gironde = Transfer("pop", "ademe", "dreal", territoire=("departement", "33"))
    assert count(database_url, gironde) == 1
    assert hand_over(database_url, gironde) == 1
    assert count(database_url, gironde) == 0  # nothing of ademe's left there

    old_owner = store.apply([owned(obs, "ademe", "33063", "5", 2)])
    assert len(old_owner.foreign) == 1
    new_owner = store.apply([owned(obs, "dreal", "33063", "6", 2)])
    assert new_owner.written == 1 and new_owner.foreign == []
    elsewhere = store.apply([owned(obs, "dreal", "75056", "7", 2)])  # Paris stayed ademe's
    assert len(elsewhere.foreign) == 1
    assert agg(database_url, "departement", "33") == (Decimal(6), 1)
    assert agg(database_url, "france", "FR") == (Decimal(9), 2)
    assert check(database_url).differences == []
    with psycopg.connect(database_url) as conn:
        kept = conn.execute(
            "SELECT indicateur, niveau, code, ancien, nouveau, observations "
            "FROM ownership_transfers"
        ).fetchall()
    assert kept == [("pop", "departement", "33", "ademe", "dreal", 1)]


def test_records_with_no_producer_can_be_handed_to_one(store, obs, database_url) -> None:
    store.apply([obs("33063", "4", 1, rid="file")])  # from a file: no producer
    assert hand_over(database_url, Transfer("pop", None, "ademe", annee=2024)) == 1
    assert store.apply([owned(obs, "ademe", "33063", "5", 2)]).written == 1
    assert hand_over(database_url, Transfer("pop", None, "ademe", annee=2023)) == 0


def test_a_hand_over_waits_for_the_batch_that_holds_a_place(store, obs, database_url) -> None:
    store.apply([owned(obs, "ademe", "33063", "4", 1)])
    done = threading.Event()
    with psycopg.connect(database_url) as batch, batch.transaction():
        # As the aggregator holds a place while it decides on owners.
        bucket = lock_bucket(("pop", "total", 2024, "33063"))
        batch.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, bucket))
        worker = threading.Thread(
            target=lambda: (hand_over(database_url, Transfer("pop", "ademe", "dreal")), done.set())
        )
        worker.start()
        time.sleep(0.5)
        assert not done.is_set()
    worker.join(10)
    assert done.is_set()


@pytest.mark.parametrize(
    ("ancien", "nouveau", "territoire"),
    [("ademe", "ademe", None), ("ademe", "dreal", ("canton", "1"))],
)
def test_a_hand_over_that_means_nothing_is_refused(ancien, nouveau, territoire) -> None:
    with pytest.raises(ValueError):
        Transfer("pop", ancien, nouveau, territoire=territoire)


def test_values_published_for_a_territory_are_handed_over_with_it(store, database_url) -> None:
    from tests.integration.test_published_values import published

    store.apply(
        [
            published("pop", "departement", "33", "10", producteur="ademe"),
            published("pop", "departement", "74", "20", producteur="ademe"),
        ]
    )
    gironde = Transfer("pop", "ademe", "dreal", territoire=("departement", "33"))
    assert count(database_url, gironde) == 1
    assert hand_over(database_url, gironde) == 1
    new = published("pop", "departement", "33", "11", version=2, producteur="dreal")
    old = published("pop", "departement", "74", "21", version=2, producteur="dreal")
    result = store.apply([new, old])
    assert result.written == 1 and result.foreign == [old]  # 74 stayed ademe's
    assert check(database_url).differences == []
