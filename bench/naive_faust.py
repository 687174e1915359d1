"""(c) A straightforward faust-streaming pipeline: one record per message.

One agent validates each record, places its commune, and in one transaction
upserts the observation and adds the difference to its EPCI, département,
région and France totals. What a first streaming version would look like;
run by ``run`` (below) as a process of its own:

    NAIVE_BOOTSTRAP=… NAIVE_DATABASE_URL=… NAIVE_TOPIC=… NAIVE_TABLE=… NAIVE_PORT=… \\
        python -m bench.naive_faust
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import faust
import psycopg
from sqlalchemy import text

from bench.baselines import create_topic, start_producer
from bench.stack import named, wait_until_counted
from common import db
from common.referential import load
from itte.embedded import free_port
from itte.processes import wait_http
from schemas.raw import RawObservation

TABLES = """
CREATE TABLE {t}_obs (indicateur text, commune text, annee int, valeur numeric,
                      PRIMARY KEY (indicateur, commune, annee));
CREATE TABLE {t}_agg (indicateur text, annee int, niveau text, code text, valeur numeric,
                      nb_valeurs int, PRIMARY KEY (indicateur, annee, niveau, code));
"""
COUNTED = (
    "SELECT coalesce(sum(nb_valeurs), 0) FROM {t}_agg"
    " WHERE niveau = 'france' AND indicateur LIKE %s"
)


def build() -> faust.App:
    table = os.environ["NAIVE_TABLE"]
    app = faust.App(
        f"naive-{table}",
        broker=f"kafka://{os.environ['NAIVE_BOOTSTRAP']}",
        consumer_auto_offset_reset="earliest",
        # The services' join settings (common/faust_app.py): with faust's
        # defaults the group join takes ~23 s on the embedded broker. The
        # clock starts once the agent is ready: the rate is the same.
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        topic_allow_declare=False,
        web_port=int(os.environ["NAIVE_PORT"]),
        store="memory://",
    )
    topic = app.topic(os.environ["NAIVE_TOPIC"], value_type=bytes, value_serializer="raw")
    engine = db.make_engine(os.environ["NAIVE_DATABASE_URL"])
    communes = load().communes
    upsert = text(
        f"INSERT INTO {table}_obs AS o VALUES (:indicateur, :commune, :annee, :valeur) "
        "ON CONFLICT (indicateur, commune, annee) DO UPDATE SET valeur = excluded.valeur "
        f"RETURNING (SELECT valeur FROM {table}_obs "
        "WHERE (indicateur, commune, annee) = (:indicateur, :commune, :annee))"
    )
    add = text(
        f"INSERT INTO {table}_agg AS a VALUES (:indicateur, :annee, :niveau, :code, :delta, :n) "
        "ON CONFLICT (indicateur, annee, niveau, code) DO UPDATE "
        "SET valeur = a.valeur + excluded.valeur, nb_valeurs = a.nb_valeurs + excluded.nb_valeurs"
    )

    @app.agent(topic)
    async def aggregate(stream: Any) -> None:
        async for value in stream:
            record = RawObservation.model_validate_json(value)
            commune = communes[str(record.commune)]  # the bench always sends a code
            valeur = Decimal(str(record.valeur))
            key = {"indicateur": record.indicateur, "commune": commune.code, "annee": record.annee}
            with engine.begin() as conn:
                old = conn.execute(upsert, {**key, "valeur": valeur}).scalar()
                delta, n = (valeur, 1) if old is None else (valeur - old, 0)
                for niveau, code in (
                    ("epci", commune.epci),
                    ("departement", commune.departement),
                    ("region", commune.region),
                    ("france", "FR"),
                ):
                    if code is not None:
                        conn.execute(
                            add,
                            {
                                "indicateur": record.indicateur,
                                "annee": record.annee,
                                "niveau": niveau,
                                "code": code,
                                "delta": delta,
                                "n": n,
                            },
                        )

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        assigned = app.consumer.assignment() if app.consumer else set()
        return web.json({"assigned": len(assigned)}, status=200 if assigned else 503)

    return app


def run(
    bootstrap: str, database_url: str, records: int, prefix: str, workdir: Path
) -> dict[str, float]:
    topic, table = f"bench.naive.{prefix}", f"bench_naive_{prefix}"
    create_topic(bootstrap, topic)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(TABLES.format(t=table))
    port = free_port()
    env = {
        **os.environ,
        "NAIVE_BOOTSTRAP": bootstrap,
        "NAIVE_DATABASE_URL": database_url,
        "NAIVE_TOPIC": topic,
        "NAIVE_TABLE": table,
        "NAIVE_PORT": str(port),
    }
    with open(workdir / f"{table}.log", "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "bench.naive_faust"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/ready", 120, worker)
        started = time.monotonic()
        producer = start_producer(bootstrap, topic, records, prefix)
        done = wait_until_counted(database_url, records, COUNTED.format(t=table), named(prefix))
        producer.join()
    finally:
        worker.terminate()
        worker.wait(30)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {table}_obs, {table}_agg")
    return {
        "records": records,
        "seconds": round(done - started, 2),
        "records_per_second": round(records / (done - started)),
    }


if __name__ == "__main__":
    worker = faust.Worker(build(), loglevel="warning", quiet=True)
    worker.execute_from_commandline()
