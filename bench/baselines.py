"""W1's points of comparison, on the same generated records and servers.

(a) ``limit``: the records produced to Kafka with confluent-kafka (one per
    message, as a producer would), consumed, and written with COPY into
    Postgres: no cleaning, no aggregation. What this machine can do at best.
(a′) ``limit_same_writes``: the same, the records then written by the
    aggregator's own set-based statements (services/aggregator/bulk.py:
    observations, commune rows, every level, the change log), in this one
    process: no cleaning, no service, nothing published. What itte's writes
    cost at best.
(b) ``pandas_batch``: the project's original batch scripts: ``read_csv``,
    ``to_sql``, then a ``groupby`` per level recomputed from scratch and
    written back with ``to_sql``.
(c) is bench/naive_faust.py.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pyarrow as pa
import sqlalchemy
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.data import as_json, indicators_for, observations, write_catalogue, write_long_csv
from common import catalogue, db, migrations
from common.kafka import PRODUCER_DEFAULTS
from common.referential import load
from schemas import bulk
from schemas.clean import place_hash
from services.aggregator.bulk import BulkStore, Indicator

PARTITIONS = 4


def create_topic(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, PARTITIONS, 1)]).values():
        future.result()


def produce(bootstrap: str, topic: str, records: int, prefix: str) -> None:
    """Every record as its own message, keyed by commune; librdkafka batches them."""
    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_DEFAULTS, "linger.ms": 20})
    for o in observations(records, prefix):
        value = json.dumps(as_json(o)).encode()
        while True:
            try:
                producer.produce(topic, value, key=o.commune.encode())
                break
            except BufferError:  # local queue full: let deliveries drain it
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError("undelivered messages")


def start_producer(bootstrap: str, topic: str, records: int, prefix: str) -> SpawnProcess:
    """In a process of its own: producers and services are separate programs."""
    process = multiprocessing.get_context("spawn").Process(
        target=produce, args=(bootstrap, topic, records, prefix)
    )
    process.start()
    return process


def limit(bootstrap: str, database_url: str, records: int, prefix: str) -> dict[str, float]:
    topic, table = f"bench.limit.{prefix}", f"bench_limit_{prefix}"
    create_topic(bootstrap, topic)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    with psycopg.connect(database_url) as conn:
        conn.execute(
            f"CREATE TABLE {table} (indicateur text, commune text, annee int, valeur numeric)"
        )
        conn.commit()
        started = time.monotonic()
        producer = start_producer(bootstrap, topic, records, prefix)
        written = 0
        while written < records:
            messages = consumer.consume(10_000, timeout=1)
            with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
                for message in messages:
                    if message.error():
                        raise RuntimeError(message.error())
                    r = json.loads(message.value() or b"{}")
                    copy.write_row((r["indicateur"], r["commune"], r["annee"], r["valeur"]))
            conn.commit()
            if messages:
                consumer.commit(asynchronous=False)
            written += len(messages)
            if not messages and not producer.is_alive() and producer.exitcode:
                raise RuntimeError(f"the producer failed ({producer.exitcode})")
        done = time.monotonic()
        producer.join()
        conn.execute(f"DROP TABLE {table}")
        conn.commit()
    consumer.close()
    return {
        "records": records,
        "seconds": round(done - started, 2),
        "records_per_second": round(records / (done - started)),
    }


def limit_same_writes(
    bootstrap: str, server_url: str, records: int, prefix: str, workdir: Path
) -> dict[str, float]:
    topic = f"bench.writes.{prefix}"
    create_topic(bootstrap, topic)
    indicators = catalogue.load(
        write_catalogue(workdir / f"{prefix}.toml", prefix, indicators_for(records))
    )
    url = migrations.new_database(server_url, f"bench_writes_{prefix}", indicators)
    engine = db.make_engine(url)
    with engine.begin() as conn:  # as `itte migrate` leaves it
        db.load_referential(conn, load())
    engine.dispose()
    rules = {i.id: Indicator(i.agregation, i.unite) for i in indicators.indicateurs.values()}
    store = BulkStore(url, load(), rules)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    started = time.monotonic()
    producer = start_producer(bootstrap, topic, records, prefix)
    written, batch = 0, 0
    while written < records:
        messages = consumer.consume(10_000, timeout=1)
        if messages:
            rows = [json.loads(m.value() or b"{}") for m in messages if not m.error()]
            store.apply(clean_table(rows), f"{prefix}-{batch}", None)
            consumer.commit(asynchronous=False)
            written, batch = written + len(rows), batch + 1
        elif not producer.is_alive() and producer.exitcode:
            raise RuntimeError(f"the producer failed ({producer.exitcode})")
    done = time.monotonic()
    producer.join()
    store.close()
    consumer.close()
    return {
        "records": records,
        "seconds": round(done - started, 2),
        "records_per_second": round(records / (done - started)),
    }


def clean_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The records as the cleaner writes them, without its checks (the
    generated values are valid and written as Postgres prints them)."""
    n = len(rows)
    communes = [r["commune"] for r in rows]
    return pa.table(
        {
            "position": pa.array(range(n), pa.int32()),
            "indicateur": [r["indicateur"] for r in rows],
            "sous_champ": ["total"] * n,
            "annee": pa.array([r["annee"] for r in rows], pa.int16()),
            "commune": communes,
            "commune_source": communes,
            "valeur": [r["valeur"] for r in rows],
            "marqueur": pa.nulls(n, pa.string()),
            "unite": pa.nulls(n, pa.string()),
            "libelle_indicateur": pa.nulls(n, pa.string()),
            "libelle_sous_champ": pa.nulls(n, pa.string()),
            "version": pa.array([1] * n, pa.int64()),
            "version_explicite": [False] * n,
            "recu": pa.array([1] * n, pa.int64()),
            "pii": pa.nulls(n, pa.string()),
            "pii_key_id": pa.nulls(n, pa.string()),
            "place": pa.array(
                [place_hash("total", r["annee"], r["commune"]) for r in rows], pa.uint32()
            ),
            "niveau": ["commune"] * n,
        },
        schema=bulk.CLEAN_SCHEMA,
    )


def referential_frame() -> pd.DataFrame:
    return pd.DataFrame(
        [(c.code, c.epci, c.departement, c.region) for c in load().communes.values()],
        columns=["commune", "epci", "departement", "region"],
    ).assign(france="FR")


def pandas_batch(
    database_url: str, records: int, prefix: str, workdir: Path, update: int
) -> dict[str, Any]:
    """Times from reading the file to the last aggregate table written; then
    again with ``update`` records corrected: a batch script starts over."""
    source = workdir / f"{prefix}.csv"
    write_long_csv(source, records, prefix)
    engine = db.make_engine(database_url)
    table = f"bench_pandas_{prefix}"
    seconds = batch_run(source, engine, table)
    with engine.connect() as conn:  # its France totals, to set beside itte's
        totals = {
            f"{i}|{a}": float(v)
            for i, a, v in conn.execute(
                sqlalchemy.text(f"SELECT indicateur, annee, valeur FROM {table}_france")
            )
        }
    write_long_csv(source, records, prefix, corrected_first=update)
    update_seconds = batch_run(source, engine, table)
    with engine.begin() as conn:
        for suffix in ("obs", "epci", "departement", "region", "france"):
            conn.execute(sqlalchemy.text(f"DROP TABLE {table}_{suffix}"))
    engine.dispose()
    source.unlink()
    return {
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_second": round(records / seconds),
        "update_seconds": round(update_seconds, 2),
        "france_totals": totals,
    }


def batch_run(source: Path, engine: sqlalchemy.Engine, table: str) -> float:
    communes = referential_frame()
    started = time.monotonic()
    frame = pd.read_csv(source, sep=";", decimal=",", dtype={"code": str})
    frame = frame.rename(columns={"variable": "indicateur", "code": "commune"})
    frame.to_sql(f"{table}_obs", engine, if_exists="replace", index=False, chunksize=10_000)
    placed = frame.merge(communes, on="commune")
    for level in ("epci", "departement", "region", "france"):
        totals = placed.groupby(["indicateur", "annee", level], as_index=False)["valeur"].agg(
            valeur="sum", nb_valeurs="count"
        )
        totals.to_sql(
            f"{table}_{level}", engine, if_exists="replace", index=False, chunksize=10_000
        )
    return time.monotonic() - started
