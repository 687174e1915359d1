"""Replaying the whole of both clean topics from offset 0 changes no
aggregate, not even its revision: writes are idempotent, so at-least-once
delivery is exactly-once in effect, in the live lane and in the bulk lane."""

from __future__ import annotations

import json

import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition

from common.kafka import CONSUMER_DEFAULTS, PRODUCER_DEFAULTS
from common.lag import BULK_GROUPS, GROUPS
from common.referential import load
from schemas import bulk, clean
from tests.e2e.stack import Stack, eventually, post
from tests.integration.test_kafka import read_all

# The aggregator's consumer groups (common/lag.py): each lane's clean topic.
LANES = {clean.TOPIC: GROUPS["aggregator"][0], bulk.CLEAN_TOPIC: BULK_GROUPS["aggregator"][0]}


def snapshot(database_url: str) -> dict:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT indicateur, sous_champ, annee, niveau, code, valeur, "
            "nb_valeurs, numerateur, denominateur, revision FROM aggregates"
        )
        return {tuple(r[:5]): tuple(r[5:]) for r in rows}


def caught_up(bootstrap: str) -> bool:
    """The aggregator has committed the end of every partition of both lanes."""
    for topic, group in LANES.items():
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, **CONSUMER_DEFAULTS}
        )
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        committed = [tp.offset for tp in consumer.committed(tps, timeout=10)]
        ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
        consumer.close()
        if not all(end == 0 or c >= end for c, end in zip(committed, ends, strict=True)):
            return False
    return True


def replay(bootstrap: str, topic: str, history: list) -> dict[int, int]:
    """Every message of ``history`` written again to its partition; the offset
    of the last one in each partition, as the broker acknowledged it."""
    last: dict[int, int] = {}

    def delivered(err: object, msg: object) -> None:
        assert err is None, err
        last[msg.partition()] = max(last.get(msg.partition(), -1), msg.offset())  # type: ignore[attr-defined]

    # As the services produce (messages up to the bulk lane's size), and
    # told of every delivery, with its offset.
    config = {**PRODUCER_DEFAULTS, "delivery.report.only.error": False}
    producer = Producer({"bootstrap.servers": bootstrap, **config})
    for m in history:
        producer.produce(topic, m.value(), m.key(), partition=m.partition(), on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(30) == 0
    return last


def consumed(bootstrap: str, written: dict[str, dict[int, int]]) -> bool:
    """The aggregator has committed past each message ``written`` (by topic,
    the last offset per partition): what it has read, not the broker's end
    marker, which the embedded broker may report a batch early."""
    for topic, last in written.items():
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": LANES[topic], **CONSUMER_DEFAULTS}
        )
        tps = [TopicPartition(topic, p) for p in sorted(last)]
        committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
        consumer.close()
        if any(committed[p] <= offset for p, offset in last.items()):
            return False
    return True


def test_replaying_both_clean_topics_changes_nothing(stack: Stack) -> None:
    communes = sorted(load().communes)[:2000]
    records = [
        {"indicateur": "tmax", "commune": code, "annee": 2031, "valeur": i % 40}
        for i, code in enumerate(communes)
    ]
    # 500 records, the live lane; 1,500, the bulk lane (a large request).
    for part in (records[:500], records[500:]):
        status, _ = post(stack.url("ingestor", "/observations"), json.dumps(part).encode())
        assert status == 202
    bootstrap, url = stack.env["KAFKA_BOOTSTRAP_SERVERS"], stack.env["DATABASE_URL"]

    def ours_in(rows: dict) -> int:
        return sum(1 for k in rows if k[0] == "tmax" and k[2] == 2031 and k[3] == "commune")

    eventually(lambda: ours_in(snapshot(url)) == len(communes), 60, "the values to arrive")
    eventually(lambda: caught_up(bootstrap), 60, "the aggregator to commit its offsets")
    before = snapshot(url)

    # Every message of both topics, from offset 0, delivered a second time.
    written = {}
    for topic in LANES:
        history = read_all(bootstrap, topic)
        assert history, topic
        written[topic] = replay(bootstrap, topic, history)
    eventually(lambda: consumed(bootstrap, written), 120, "the replay to be consumed")
    assert snapshot(url) == before
