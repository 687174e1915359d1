from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.kafka import CONSUMER_DEFAULTS, BlockingProducer, DeliveryError, ensure_topics
from common.servers import Servers
from schemas import aggregates, bulk, clean, limits, raw
from schemas.aggregates import AggregateChange
from services.aggregator.publisher import SELECT_PENDING, OutboxRelay
from tests.strategies import values_within_bounds


def now_ms() -> int:
    return int(time.time() * 1000)


def read_all(bootstrap: str, topic: str, since_ms: int = 0, timeout: float = 10.0) -> list:
    """Every message of a topic produced at or after `since_ms`, to the current end.

    Tests pass the time they began: the topic outlives each test, and another
    test's messages must not be read as this one's. Time, not offsets: the
    embedded broker reports a partition's end as its last batch's first offset
    plus one, so the reading goes on until the broker has nothing more."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, **CONSUMER_DEFAULTS}
    )
    partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1]
        for p in partitions
    }
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    messages, reached = [], {p for p, end in ends.items() if end == 0}
    while True:
        batch = consumer.consume(1000, 1.0)
        if not batch and len(reached) == len(ends):
            break
        for message in batch:
            if message.error():
                continue
            if message.timestamp()[1] >= since_ms:
                messages.append(message)
            if message.offset() + 1 >= ends[message.partition()]:
                reached.add(message.partition())
    consumer.close()
    return messages


def clean_records(bootstrap: str, indicators: set[str]) -> list[dict]:
    """Every record of ``indicators`` on both clean topics: the live lane's
    envelopes and the bulk lane's columns (each with its record id)."""
    found = [
        r
        for m in read_all(bootstrap, clean.TOPIC)
        for r in json.loads(m.value())["records"]
        if r["indicateur"] in indicators
    ]
    for m in read_all(bootstrap, bulk.CLEAN_TOPIC):
        table = bulk.read_table(m.value())
        batch_id = bulk.header_of(table, bulk.CleanHeader).batch_id
        for row in table.to_pylist():
            if row["indicateur"] in indicators:
                found.append({**row, "record_id": f"{batch_id}:{row['position']:06d}"})
    return found


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
    indicateur, annee = "co2", 2024
    since = now_ms()
    store.apply([obs("33063", "5", indicateur=indicateur, annee=annee)])
    relay = OutboxRelay(database_url, BlockingProducer(servers.kafka_bootstrap_servers))
    assert relay.publish_pending() == 5  # the commune, EPCI, département, région, France
    assert relay.publish_pending() == 0
    store.apply([obs("33063", "8", 2, indicateur=indicateur, annee=annee)])
    assert relay.publish_pending() == 5
    ours = [
        json.loads(m.value())
        for m in read_all(servers.kafka_bootstrap_servers, aggregates.TOPIC, since)
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
    store.apply([obs("33063", "5", annee=1901), obs("74010", "2", annee=1901)])
    with psycopg.connect(database_url, autocommit=True) as conn:  # committed 90 s ago
        conn.execute(
            "UPDATE aggregates SET updated_at = now() - interval '90 seconds' "
            "WHERE annee = 1901 AND niveau = 'france'"
        )
    pending, oldest = relay.backlog()
    # Each commune, its EPCI, département and région; France once.
    assert pending == 9 and 90 <= oldest < 120
    assert relay.publish_pending() == 9 and relay.backlog() == (0, 0.0)
    without_communes = OutboxRelay(
        database_url, BlockingProducer(servers.kafka_bootstrap_servers), communes=False
    )
    store.apply([obs("33063", "6", 2, annee=1901)])
    assert without_communes.backlog()[0] == 4 and without_communes.publish_pending() == 4
    # Its cursor moved past the commune row it did not publish: nothing waits.
    assert without_communes.backlog() == (0, 0.0) and without_communes.publish_pending() == 0


def test_a_subscriber_of_the_topic_ends_with_exactly_the_apis_rows(
    servers: Servers, store, obs, database_url
) -> None:
    from fastapi.testclient import TestClient

    from services.api.app import create_app, read_only_engine

    annee = 2024
    since = now_ms()
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
    for message in read_all(servers.kafka_bootstrap_servers, aggregates.TOPIC, since):
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


def test_each_message_the_database_writes_is_the_aggregate_change_of_its_row(
    servers: Servers, store, obs, database_url
) -> None:
    """The relay's messages are built in SQL: each must read back as the
    AggregateChange pydantic builds from the same row, with the same fields,
    for hard values: a ratio's long quotient, a tiny and a huge decimal, a
    secret cell, an extreme, names with an apostrophe and a diaeresis."""
    annee = 2024
    since = now_ms()
    store.apply(
        [
            obs("94038", "0.0000001", annee=annee, rid="a"),  # L'Haÿ-les-Roses
            obs("33063", "3", annee=annee, indicateur="co2", rid="b"),
            obs("33063", "7", annee=annee, indicateur="pop", rid="c"),
            obs("74010", "9" * 30 + ".5", annee=annee, indicateur="co2", rid="d"),
            obs("74010", None, annee=annee, indicateur="tmax", rid="e"),
            obs("33281", "-41.25", annee=annee, indicateur="tmin", rid="f"),
        ]
    )
    relay = OutboxRelay(database_url, BlockingProducer(servers.kafka_bootstrap_servers))
    assert relay.publish_pending() > 0
    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute("SELECT * FROM aggregate_values WHERE annee = %s", [annee]).fetchall()
    expected = {
        AggregateChange.model_validate(r).kafka_key(): AggregateChange.model_validate(r)
        for r in rows
    }
    sent = {
        m.key().decode(): m.value()
        for m in read_all(servers.kafka_bootstrap_servers, aggregates.TOPIC, since)
        if json.loads(m.value())["annee"] == annee
    }
    assert set(sent) == set(expected)
    # Each commune and its EPCI, département and région; France once a row:
    # pop 2+6+1, co2 2+6+1, tmax 1+3+1, tmin 1+3+1, and where both are (33063)
    # each of the two ratios of co2 by pop 1+3+1.
    assert len(sent) == 9 + 9 + 5 + 5 + 5 + 5
    for key, value in sent.items():
        assert set(json.loads(value)) == set(expected[key].model_dump(mode="json")), key
        assert AggregateChange.model_validate_json(value) == expected[key], key
    ratio = AggregateChange.model_validate_json(sent[f"co2_par_hab|total|{annee}|commune|33063"])
    assert ratio.valeur is not None and ratio.valeur * 7 == pytest.approx(3000)
    assert json.loads(sent[f"pop|total|{annee}|commune|94038"])["nom"] == "L'Haÿ-les-Roses"


texts = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=limits.MAX_KEY_CHARS,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sous_champ=texts, unite=st.none() | texts, valeur=st.none() | values_within_bounds)
def test_for_any_text_and_value_the_databases_message_is_the_rows_change(
    store, obs, database_url, sous_champ: str, unite: str | None, valeur
) -> None:
    """Quotes, backslashes, control characters, any script, values at the
    bounds: the message the write returns, and the one the relay reads from
    the log, both read back as the row's AggregateChange."""
    annee = 2024
    with psycopg.connect(database_url) as conn:  # each example from empty tables
        conn.execute("TRUNCATE observations, aggregates, aggregate_change_log")
    record = obs("33063", None if valeur is None else str(valeur), annee=annee, rid="p")
    applied = store.apply([record.model_copy(update={"sous_champ": sous_champ, "unite": unite})])
    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute(
            "SELECT * FROM aggregate_values WHERE annee = %s AND sous_champ = %s",
            [annee, sous_champ],
        ).fetchall()
        seqs = [c.seq for c in applied.changes]
        read = conn.execute(
            SELECT_PENDING.replace("WHERE l.", "WHERE l.change_seq = ANY(%(seqs)s) AND l."),
            {"after": 0, "page": 100, "seqs": seqs},
        ).fetchall()
    expected = {
        AggregateChange.model_validate(r).kafka_key(): AggregateChange.model_validate(r)
        for r in rows
    }
    written = {c.key: c.message for c in applied.changes}
    from_log = {row["kafka_key"]: row["message"] for row in read}
    assert len(written) == len(from_log) == len(expected) == 5  # commune, EPCI, dép., région, FR
    for key, message in written.items():
        assert message is not None
        assert AggregateChange.model_validate_json(message) == expected[key]
        assert from_log[key] is not None and from_log[key].encode() == message
