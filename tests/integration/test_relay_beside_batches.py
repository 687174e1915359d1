"""The relay runs beside the batches: while batches keep moving the same
rows (France, a région, a département), it publishes them and moves its
cursor, and neither waits forever nor deadlocks; at the end every row is
published at its last revision, with one change-feed number each."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import psycopg

from common.kafka import BlockingProducer
from common.servers import Servers
from schemas import aggregates
from schemas.clean import CleanObservation
from services.aggregator.publisher import OutboxRelay
from services.aggregator.store import AggregateStore
from tests.integration.test_kafka import now_ms, read_all

# Gironde and Haute-Savoie communes: their EPCI, départements, régions and
# France are shared by every batch.
COMMUNES = ["33063", "33281", "33318", "33069", "74002", "74004", "74010", "74019"]


def test_batches_and_relay_at_once_end_with_every_row_published_at_its_last_revision(
    servers: Servers,
    store: AggregateStore,
    obs: Callable[..., CleanObservation],
    database_url: str,
) -> None:
    annee = 2024
    since = now_ms()
    relay = OutboxRelay(database_url, BlockingProducer(servers.kafka_bootstrap_servers), page=7)
    failures: list[BaseException] = []
    applied = threading.Event()

    def batches() -> None:
        try:
            for version in range(1, 41):
                # Each batch corrects every commune: the shared rows change every time.
                store.apply(
                    [
                        obs(c, str(version * (i + 1)), version, annee=annee, rid=f"{version}:{c}")
                        for i, c in enumerate(COMMUNES)
                    ]
                )
        except BaseException as exc:
            failures.append(exc)
        finally:
            applied.set()

    def relaying() -> None:
        try:
            while not applied.is_set():
                relay.publish_pending()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=batches), threading.Thread(target=relaying)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    assert failures == []  # a deadlock (40P01) would be here
    relay.publish_pending()
    assert relay.backlog() == (0, 0.0)

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT indicateur, sous_champ, annee, niveau, code, revision, change_seq"
            " FROM aggregates WHERE annee = %s",
            [annee],
        ).fetchall()
    assert len(rows) == len(COMMUNES) + 2 + 2 + 2 + 1  # 2 EPCI, 2 départements, 2 régions, France
    seqs = [row[6] for row in rows]
    assert None not in seqs and len(set(seqs)) == len(seqs)
    last: dict[str, int] = {}
    for message in read_all(servers.kafka_bootstrap_servers, aggregates.TOPIC, since):
        change = json.loads(message.value())
        if change["annee"] == annee:
            key = message.key().decode()
            last[key] = max(last.get(key, 0), change["revision"])
    assert last == {"|".join(map(str, row[:5])): row[5] for row in rows}
