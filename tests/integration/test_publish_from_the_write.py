"""A batch's changes are published as its transaction wrote them, when
nothing numbered before them is pending; otherwise the relay reads the log.
Either way the topic ends with every row at its last revision, in order."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import psycopg

from common import catalogue
from common.kafka import BlockingProducer
from common.referential import load
from common.servers import Servers
from schemas import aggregates
from schemas.clean import CleanObservation
from services.aggregator.publisher import OutboxRelay
from services.aggregator.rules import AggregationRules
from services.aggregator.store import AggregateStore
from tests.conftest import TEST_CATALOGUE
from tests.integration.test_kafka import now_ms, read_all

COMMUNES = ["33063", "33281", "74010"]
RULES = AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))


def relay_of(servers: Servers, database_url: str) -> OutboxRelay:
    return OutboxRelay(database_url, BlockingProducer(servers.kafka_bootstrap_servers))


def last_revisions(servers: Servers, since: int, annee: int) -> dict[str, int]:
    """What a subscriber keeps: the highest revision per key."""
    last: dict[str, int] = {}
    for message in read_all(servers.kafka_bootstrap_servers, aggregates.TOPIC, since):
        change = json.loads(message.value())
        if change["annee"] == annee:
            key = message.key().decode()
            last[key] = max(last.get(key, 0), change["revision"])
    return last


def stored_revisions(database_url: str, annee: int) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT indicateur, sous_champ, annee, niveau, code, revision FROM aggregates"
            " WHERE annee = %s",
            [annee],
        ).fetchall()
    return {"|".join(map(str, row[:5])): row[5] for row in rows}


def cursor(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT published_seq FROM outbox_cursor WHERE relay = 'aggregates'"
        ).fetchone()
    return row[0] if row else 0


def test_a_batch_is_published_as_written_and_the_log_then_holds_nothing_pending(
    servers: Servers, store: AggregateStore, obs: Callable[..., CleanObservation], database_url
) -> None:
    annee, since = 2001, now_ms()
    relay = relay_of(servers, database_url)
    relay.publish_pending()
    applied = store.apply([obs(c, "4", annee=annee, rid=c) for c in COMMUNES])
    assert relay.publish_changes(applied.changes) == len(stored_revisions(database_url, annee))
    assert cursor(database_url) == max(c.seq for c in applied.changes)
    assert relay.publish_pending() == 0 and relay.backlog() == (0, 0.0)
    assert last_revisions(servers, since, annee) == stored_revisions(database_url, annee)


def test_an_older_change_pending_sends_the_relay_to_the_log(
    servers: Servers, store: AggregateStore, obs: Callable[..., CleanObservation], database_url
) -> None:
    annee, since = 2002, now_ms()
    relay = relay_of(servers, database_url)
    relay.publish_pending()
    store.apply([obs("33063", "1", annee=annee, rid="a")])  # another writer's, unpublished
    later = store.apply([obs("74010", "2", annee=annee, rid="b")])
    assert relay.publish_changes(later.changes) is None
    assert relay.publish_pending() == 5 + 5 - 1  # both communes' rows, France once
    assert relay.publish_changes(later.changes) == 0  # the read published them
    assert last_revisions(servers, since, annee) == stored_revisions(database_url, annee)


def test_changes_a_later_batch_replaced_and_published_are_not_published_again(
    servers: Servers, store: AggregateStore, obs: Callable[..., CleanObservation], database_url
) -> None:
    """A later transaction changed every row of an earlier one and was
    published first: the earlier one's messages would put older revisions
    after newer ones on the topic."""
    annee, since = 2003, now_ms()
    relay = relay_of(servers, database_url)
    relay.publish_pending()
    first = store.apply([obs("33063", "1", 1, annee=annee, rid="a")])
    second = store.apply([obs("33063", "2", 2, annee=annee, rid="b")])
    assert relay.publish_changes(second.changes) == 5  # the first's entries were all replaced
    assert relay.publish_changes(first.changes) == 0
    published = [
        json.loads(m.value())["revision"]
        for m in read_all(servers.kafka_bootstrap_servers, aggregates.TOPIC, since)
        if json.loads(m.value())["annee"] == annee and json.loads(m.value())["niveau"] == "france"
    ]
    assert published == [2]


def test_two_writers_publishing_their_own_changes_end_with_every_last_revision(
    servers: Servers, store: AggregateStore, obs: Callable[..., CleanObservation], database_url
) -> None:
    """Two aggregators, each publishing what it wrote: whoever finds an older
    change pending reads the log; neither waits forever nor deadlocks."""
    annee, since = 2004, now_ms()
    relay_of(servers, database_url).publish_pending()
    failures: list[BaseException] = []
    other = AggregateStore(database_url, load(), RULES)

    def writer(target: AggregateStore, communes: list[str], name: str) -> None:
        relay = relay_of(servers, database_url)
        try:
            for version in range(1, 16):
                applied = target.apply(
                    [
                        obs(c, str(version * (i + 1)), version, annee=annee, rid=f"{name}{version}")
                        for i, c in enumerate(communes)
                    ]
                )
                if relay.publish_changes(applied.changes) is None:
                    relay.publish_pending()
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=writer, args=(store, ["33063", "33281"], "x")),
        threading.Thread(target=writer, args=(other, ["74010", "33318"], "y")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    other.close()
    assert not any(thread.is_alive() for thread in threads) and failures == []
    relay = relay_of(servers, database_url)
    assert relay.publish_pending() == 0 and relay.backlog() == (0, 0.0)
    assert last_revisions(servers, since, annee) == stored_revisions(database_url, annee)
