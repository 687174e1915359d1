"""Replaying the whole clean topic from offset 0 changes no aggregate, not even
its revision: writes are idempotent, so at-least-once delivery is exactly-once
in effect."""

from __future__ import annotations

import json

import psycopg
from confluent_kafka import Consumer, TopicPartition

from common.kafka import CONSUMER_DEFAULTS, BlockingProducer
from common.referential import load
from schemas import clean
from tests.e2e.stack import Stack, eventually, post
from tests.integration.test_kafka import read_all

GROUP = "itte-aggregator"  # the aggregator's faust app id


def snapshot(database_url: str) -> dict:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT indicateur, sous_champ, annee, niveau, code, valeur, "
            "nb_valeurs, numerateur, denominateur, revision FROM aggregates"
        )
        return {tuple(r[:5]): tuple(r[5:]) for r in rows}


def caught_up(bootstrap: str) -> bool:
    """The aggregator has committed the end of every clean partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, **CONSUMER_DEFAULTS})
    partitions = consumer.list_topics(clean.TOPIC, timeout=10).topics[clean.TOPIC].partitions
    tps = [TopicPartition(clean.TOPIC, p) for p in sorted(partitions)]
    committed = [tp.offset for tp in consumer.committed(tps, timeout=10)]
    ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
    consumer.close()
    return all(end == 0 or c >= end for c, end in zip(committed, ends, strict=True))


def test_replaying_the_whole_clean_topic_changes_nothing(stack: Stack) -> None:
    communes = sorted(load().communes)[:500]
    records = [
        {"indicateur": "tmax", "commune": code, "annee": 2031, "valeur": i % 40}
        for i, code in enumerate(communes)
    ]
    status, _ = post(stack.url("ingestor", "/observations"), json.dumps(records).encode())
    assert status == 202
    bootstrap, url = stack.env["KAFKA_BOOTSTRAP_SERVERS"], stack.env["DATABASE_URL"]

    def ours_in(rows: dict) -> int:
        return sum(1 for k in rows if k[0] == "tmax" and k[2] == 2031 and k[3] == "commune")

    eventually(lambda: ours_in(snapshot(url)) == len(communes), 60, "the values to arrive")
    eventually(lambda: caught_up(bootstrap), 60, "the aggregator to commit its offsets")
    before = snapshot(url)

    # Every message of the topic, from offset 0, delivered a second time.
    history = read_all(bootstrap, clean.TOPIC)
    BlockingProducer(bootstrap).send_all(clean.TOPIC, ((m.key(), m.value()) for m in history))
    eventually(lambda: caught_up(bootstrap), 120, "the replay to be consumed")
    assert snapshot(url) == before
