from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

from common.embedded import Servers
from common.kafka import CONSUMER_DEFAULTS, BlockingProducer, DeliveryError, ensure_topics
from schemas import aggregates, raw
from services.aggregator.publisher import OutboxRelay


def read_all(bootstrap: str, topic: str, timeout: float = 10.0) -> list:
    """Every message of a topic, from offset 0 to the current end."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, **CONSUMER_DEFAULTS}
    )
    partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1]
        for p in partitions
    }
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    messages, done = [], {p for p, end in ends.items() if end == 0}
    while len(done) < len(ends):
        for message in consumer.consume(1000, 1.0):
            if message.error():
                continue
            messages.append(message)
            if message.offset() + 1 >= ends[message.partition()]:
                done.add(message.partition())
    consumer.close()
    return messages


def test_topics_exist_and_creation_is_idempotent(servers: Servers) -> None:
    ensure_topics(servers.kafka_bootstrap_servers, partitions=4)
    consumer = Consumer({"bootstrap.servers": servers.kafka_bootstrap_servers, "group.id": "probe"})
    topics = consumer.list_topics(timeout=10).topics
    consumer.close()
    assert {raw.TOPIC, aggregates.TOPIC, "indicators.clean", "indicators.deadletter"} <= set(topics)


def test_send_all_waits_for_acknowledgement(servers: Servers) -> None:
    topic = f"test.{uuid.uuid4().hex[:8]}"
    producer = BlockingProducer(servers.kafka_bootstrap_servers)
    sent = producer.send_all(topic, ((str(i), b"x" * 10) for i in range(500)))
    assert sent == 500
    assert len(read_all(servers.kafka_bootstrap_servers, topic)) == 500


def test_broker_down_raises_instead_of_pretending() -> None:
    producer = BlockingProducer("127.0.0.1:1", **{"message.timeout.ms": 1500, "log_level": 0})
    with pytest.raises(DeliveryError):
        producer.send_all(raw.TOPIC, [("k", b"v")], timeout=5)


def test_outbox_relay_publishes_each_change_once_per_revision(
    servers: Servers, store, obs, database_url
) -> None:
    indicateur, annee = "co2", 1900 + uuid.uuid4().int % 200  # a year of its own on the topic
    store.apply([obs("33063", "5", indicateur=indicateur, annee=annee)])
    relay = OutboxRelay(database_url, BlockingProducer(servers.kafka_bootstrap_servers))
    assert relay.publish_pending() == 5  # the commune, EPCI, département, région, France
    assert relay.publish_pending() == 0
    store.apply([obs("33063", "8", 2, indicateur=indicateur, annee=annee)])
    assert relay.publish_pending() == 5
    ours = [
        json.loads(m.value())
        for m in read_all(servers.kafka_bootstrap_servers, aggregates.TOPIC)
        if (json.loads(m.value())["indicateur"], json.loads(m.value())["annee"])
        == (indicateur, annee)
    ]
    france = [m for m in ours if m["niveau"] == "france"]
    assert [(Decimal(m["valeur"]), m["revision"]) for m in france] == [(5, 1), (8, 2)]
    assert france[-1]["communes_renseignees"] == 1
    assert france[-1]["communes_total"] == 34_969
    assert datetime.fromisoformat(france[-1]["updated_at"]) <= datetime.now(UTC)


def test_the_outbox_backlog_counts_unpublished_changes_and_ages_the_oldest(
    servers: Servers, store, obs, database_url
) -> None:
    relay = OutboxRelay(database_url, BlockingProducer(servers.kafka_bootstrap_servers))
    relay.publish_pending()
    assert relay.backlog() == (0, 0.0)
    store.apply([obs("33063", "5", annee=1850), obs("74010", "2", annee=1850)])
    with psycopg.connect(database_url, autocommit=True) as conn:  # committed 90 s ago
        conn.execute(
            "UPDATE aggregates SET updated_at = now() - interval '90 seconds' "
            "WHERE annee = 1850 AND niveau = 'france'"
        )
    pending, oldest = relay.backlog()
    # Each commune, its EPCI, département and région; France once.
    assert pending == 9 and 90 <= oldest < 120
    assert relay.publish_pending() == 9 and relay.backlog() == (0, 0.0)
    without_communes = OutboxRelay(
        database_url, BlockingProducer(servers.kafka_bootstrap_servers), communes=False
    )
    store.apply([obs("33063", "6", 2, annee=1850)])
    assert without_communes.backlog()[0] == 4 and without_communes.publish_pending() == 4


def test_a_subscriber_of_the_topic_ends_with_exactly_the_apis_rows(
    servers: Servers, store, obs, database_url
) -> None:
    from fastapi.testclient import TestClient

    from services.api.app import create_app, read_only_engine

    annee = 1900 + uuid.uuid4().int % 200  # a year of its own on the topic
    store.apply(
        [
            obs("33063", "5", annee=annee),
            obs("33281", None, annee=annee),  # a secret cell
            obs("74010", "2", annee=annee),
        ]
    )
    relay = OutboxRelay(database_url, BlockingProducer(servers.kafka_bootstrap_servers))
    relay.publish_pending()
    store.apply([obs("33063", "9", 2, annee=annee)])  # a correction
    relay.publish_pending()

    state: dict[str, dict] = {}  # what a subscriber keeps: the last revision per key
    for message in read_all(servers.kafka_bootstrap_servers, aggregates.TOPIC):
        change = json.loads(message.value())
        if change["annee"] == annee and change["indicateur"] == "pop":
            key = message.key().decode()
            if key not in state or state[key]["revision"] < change["revision"]:
                state[key] = change
    api = TestClient(create_app(read_only_engine(database_url, 2)))
    served = [
        row
        for niveau in ("commune", "epci", "departement", "region", "france")
        for row in api.get(
            "/indicateurs", params={"niveau": niveau, "annee": annee, "exact": "true"}
        ).json()
    ]
    fields = ("nom", "agregation", "unite", "communes_renseignees", "communes_total")
    fields += ("couverture", "complet")
    assert len(served) == len(state) == 3 + 2 * 3 + 1  # communes, then 2 of each level, France
    for row in served:
        change = state[f"pop|total|{annee}|{row['niveau']}|{row['code']}"]
        assert {f: change[f] for f in fields} == {f: row[f] for f in fields}
        assert change["valeur"] == row["valeur"]  # exact decimal text on both sides
