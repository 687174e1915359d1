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
    assert relay.publish_pending() == 4  # EPCI, département, région, France
    assert relay.publish_pending() == 0
    store.apply([obs("33063", "8", 2, indicateur=indicateur, annee=annee)])
    assert relay.publish_pending() == 4
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
    # 33063: its EPCI, Gironde, Nouvelle-Aquitaine; 74010: its EPCI, Haute-Savoie,
    # Auvergne-Rhône-Alpes; France once. Commune rows are not published.
    assert pending == 7 and 90 <= oldest < 120
    assert relay.publish_pending() == 7 and relay.backlog() == (0, 0.0)
