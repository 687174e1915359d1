"""Personal fields never rest in clear: marked names and e-mails sent by
every path (HTTP JSON and NDJSON, a file, a SQL pull, straight into Kafka)
are found in no topic after the edge, no table, no log and no file."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from common import db
from common.kafka import BlockingProducer
from schemas import aggregates, bulk, clean, deadletter, raw
from tests.e2e.stack import Stack, eventually, get_json, post
from tests.integration.test_kafka import read_all

COMMUNES = {"http": "33063", "ndjson": "75056", "file": "69123", "pull": "13055", "kafka": "31555"}


def record(path: str, marker: str, **extra: object) -> dict:
    return {
        "indicateur": "e2e_pii",
        "commune": COMMUNES[path],
        "annee": 2024,
        "valeur": 1,
        "email": f"{marker}.{path}@example.org",
        "nom_declarant": f"Jeanne {marker.capitalize()} {path}",
        **extra,
    }


def table_texts(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        ]
        return "\n".join(
            row[0] for table in tables for row in conn.execute(f"SELECT t::text FROM {table} t")
        )


def test_marked_personal_values_are_nowhere_in_clear(stack: Stack, tmp_path: Path) -> None:
    marker = f"zorglub{uuid.uuid4().hex[:10]}"  # in every personal value sent
    native = f"native{uuid.uuid4().hex[:10]}"  # only in what goes straight to Kafka
    url = stack.url("ingestor", "/observations")
    unknown = record("http", marker, commune="99999")  # dead-lettered by the cleaner
    status, answer = post(url, json.dumps([record("http", marker), unknown]).encode())
    assert status == 202, answer
    dead_batch = answer["batch_ids"][0]
    # A personal field spelled otherwise, and an indicator named like one
    # (its value is personal: hashed at the edge, dead-lettered personal_field).
    disguised = {
        "indicateur": "Téléphone",
        "commune": "33063",
        "annee": 2024,
        "valeur": f"06{marker}",
        "Courriel": f"{marker}.courriel@example.org",
    }
    lines = [
        json.dumps(record("ndjson", marker)),
        json.dumps({"email": f"{marker}@x.org"}),
        json.dumps(disguised, ensure_ascii=False),
    ]
    status, answer = post(f"{url}?mode=partial", "\n".join(lines).encode(), "application/x-ndjson")
    assert status == 202 and [r["line"] for r in answer["rejected"]] == [2], answer
    disguised_batch = answer["batch_ids"][0]
    assert marker not in json.dumps(answer)

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    source = inputs / "people.ndjson"
    refused = {"commune": "33063", "email": f"{marker}@x.org"}  # no indicateur
    source.write_text("\n".join(json.dumps(r) for r in (record("file", marker), refused)))
    done = stack.itte("ingest", str(source))
    assert done.returncode == 1 and "1 published, 1 rejected" in done.stdout, done.stderr
    # A commune table whose personal columns are no measures: one record.
    table = inputs / "bornes.csv"
    table.write_text(
        "codgeo,date,nb_pdc,E-Mail,Prénom\n"
        f"33063,01/01/2024,3,{marker}.table@example.org,Jeanne {marker}\n",
        encoding="utf-8",
    )
    done = stack.itte("ingest", str(table))
    assert done.returncode == 0 and "1 published" in done.stdout, done.stdout + done.stderr

    pulled = record("pull", marker)
    query = (
        "SELECT " + ", ".join(f"'{v}' AS {k}" for k, v in pulled.items()) + ", 1 AS n "
        "WHERE 1 > :cursor"
    )
    database = db.sqlalchemy_url(stack.env["DATABASE_URL"])
    done = stack.itte(
        "pull",
        "--url",
        database,
        "--query",
        query,
        "--cursor-column",
        "n",
        "--since",
        "0",
        "--name",
        "pii",
    )
    assert done.returncode == 0 and "1 published" in done.stdout, done.stderr

    envelope = {
        "batch_id": f"kafka-{uuid.uuid4().hex}",
        "source": "kafka",
        "received_at": datetime.now(UTC).isoformat(),
        "records": [record("kafka", native)],
    }
    BlockingProducer(stack.env["KAFKA_BOOTSTRAP_SERVERS"]).send_all(
        raw.TOPIC, [(None, json.dumps(envelope).encode())]
    )

    def all_served() -> bool:
        rows = get_json(stack.url("api", "/indicateurs?niveau=france&indicateur=e2e_pii"))
        return bool(rows) and rows[0]["communes_renseignees"] == len(COMMUNES)

    eventually(all_served, 90, "the five paths' records")
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    eventually(
        lambda: any(
            m.key() and m.key().decode().startswith(dead_batch)
            for m in read_all(bootstrap, deadletter.TOPIC)
        ),
        60,
        "the dead letter of the unknown commune",
    )

    eventually(
        lambda: any(
            json.loads(m.value() or b"{}").get("reason") == "personal_field"
            for m in read_all(bootstrap, deadletter.TOPIC)
            if m.key() and m.key().decode().startswith(disguised_batch)
        ),
        60,
        "the dead letter of the indicator named like a personal field",
    )

    after_the_edge = b"".join(
        (m.key() or b"") + (m.value() or b"")
        for topic in (clean.TOPIC, bulk.CLEAN_TOPIC, deadletter.TOPIC, aggregates.TOPIC)
        for m in read_all(bootstrap, topic)
    ).decode(errors="replace")
    raw_topic = b"".join(
        m.value() or b""
        for topic in (raw.TOPIC, bulk.RAW_TOPIC)
        for m in read_all(bootstrap, topic)
    ).decode(errors="replace")
    tables = table_texts(stack.env["DATABASE_URL"])
    files = "".join(
        path.read_text(errors="replace")
        for folder in (stack.log_dir, inputs)
        for path in folder.rglob("*")
        if path.is_file()
        and path not in (source, table)
        and path.suffix in ("", ".log", ".ndjson", ".json")
    )
    assert (inputs / "people.ndjson.rejets.ndjson").exists()
    for where, text in {
        "topics": after_the_edge,
        "tables": tables,
        "logs and files": files,
    }.items():
        for secret in (marker, native):
            assert secret not in text.lower(), f"{secret} in clear in the {where}"
    assert marker not in raw_topic.lower()  # hashed by the ingestor before publishing
    assert native in raw_topic.lower()  # the rule for Kafka-native producers: theirs to hash
