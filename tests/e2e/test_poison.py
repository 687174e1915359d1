"""A bad record costs only itself, through the running services: good and
poison records interleaved by HTTP, straight into indicators.raw and straight
into indicators.clean; every good record is served, every other one is
refused at the edge or dead-lettered with a reason, and the services go on."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from confluent_kafka import Producer

from schemas import clean, deadletter, raw
from tests.e2e.stack import Stack, eventually, get_json, post
from tests.integration.test_isolation import INCOMPRESSIBLE
from tests.integration.test_kafka import read_all

IND = "e2e_poison"
COMMUNES = ["33063", "33281", "74010", "01015", "22016", "2A004", "20004"]


def good(i: int) -> dict[str, Any]:
    commune = COMMUNES[i % len(COMMUNES)]
    return {
        "indicateur": IND,
        "commune": commune,
        "annee": 2026,
        "sous_champ": f"n{i}",
        "valeur": i,
    }


def odd(field: str, value: str) -> str:
    """A record whose ``field`` holds ``value`` as raw JSON text."""
    return json.dumps({**good(0), field: "@"}).replace('"@"', value)


REFUSED_AT_THE_EDGE = [
    odd("annee", '"' + "5" * 5000 + '"'),
    odd("unite", '"kg\\u0000"'),
    odd("sous_champ", '"a\\u0000b"'),
    odd("version", str(2**63)),
    odd("valeur", '"1e999999999"'),
    odd("sous_champ", '"' + "x" * 3000 + '"'),
    odd("valeur", "NaN"),
    odd("nom", '"\\ud800"'),
]
DEAD_IN_THE_CLEANER = [odd("annee", '"²"'), odd("annee", '"٢٠٢٦"'), odd("commune", '"2A0O4"')]


def send(bootstrap: str, topic: str, values: list[bytes]) -> list[tuple[int, int]]:
    """(partition, offset) of each message, in the order given, once acknowledged
    (acknowledgements of different partitions come in any order)."""
    placed: dict[int, tuple[int, int]] = {}
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for index, value in enumerate(values):

        def delivered(error: Any, message: Any, index: int = index) -> None:
            assert error is None, error
            placed[index] = (message.partition(), message.offset())

        producer.produce(topic, value=value, on_delivery=delivered)
    producer.flush(30)
    assert len(placed) == len(values)
    return [placed[i] for i in range(len(values))]


def test_poison_costs_only_itself_through_the_services(stack: Stack) -> None:
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    served = 0
    # 1. By HTTP, the odd records of the issue between good ones (partial mode).
    lines, n = [], 0
    for bad in REFUSED_AT_THE_EDGE + DEAD_IN_THE_CLEANER:
        n += 1
        lines += [json.dumps(good(n)), bad]
        served += n
    status, answer = post(
        stack.url("ingestor", "/observations?mode=partial"),
        "\n".join(lines).encode(),
        "application/x-ndjson",
    )
    assert status == 202, answer
    assert len(answer["rejected"]) == len(REFUSED_AT_THE_EDGE)
    assert answer["accepted"] == n + len(DEAD_IN_THE_CLEANER)
    [http_batch] = answer["batch_ids"]

    # 2. Straight into indicators.raw: garbage, nesting, and an envelope mixing
    # good and poison records, as a Kafka-native producer could write them.
    records = [json.dumps(good(100)), *REFUSED_AT_THE_EDGE, json.dumps(good(200))]
    envelope = (
        '{"batch_id": "e2e-poison-raw", "source": "kafka", "received_at": '
        '"2026-11-29T00:00:00Z", "records": [' + ",".join(records) + "]}"
    )
    raw_messages = [b"\xff\xfe not JSON", b"[" * 100_000, envelope.encode()]
    raw_placed = send(bootstrap, raw.TOPIC, raw_messages)
    served += 300

    # 3. Straight into indicators.clean: records Postgres refuses, between good ones.
    def clean_record(i: int, **overrides: Any) -> dict[str, Any]:
        base = {
            "record_id": f"e2e-poison-clean:{i:06d}",
            "indicateur": IND,
            "annee": 2026,
            "commune": "74010",
            "commune_source": "74010",
            "sous_champ": f"clean-{i}",
            "valeur": str(1000 + i),
            "version": 1,
        }
        return {**base, **overrides}

    # The clean schema keeps the raw bounds: the first two are refused when
    # decoded; Postgres refuses the third.
    poisoned = {
        1: {"sous_champ": INCOMPRESSIBLE},
        2: {"unite": "kg\x00"},
        4: {"valeur": "1E+999999"},
    }
    reasons = {1: "invalid_schema", 2: "invalid_schema", 4: "database_error"}
    batch = [clean_record(i, **poisoned.get(i, {})) for i in range(6)]
    send(
        bootstrap, clean.TOPIC, [json.dumps({"batch_id": "e2e-poison", "records": batch}).encode()]
    )
    served += sum(1000 + i for i in range(6) if i not in poisoned)
    # What once stopped the aggregator at every restart, its partition with it:
    # a dead letter named by a lone surrogate (it could not be written), and a
    # time past a float (the freshness clock could not read it).
    stalls = [
        {"batch_id": "\ud800", "records": [{"record_id": 7}, clean_record(10)]},
        {"batch_id": "e2e-poison-stall", "records": [clean_record(11, recu=10**309)]},
        {"batch_id": "e2e-poison-after", "records": [clean_record(12)]},
    ]
    send(bootstrap, clean.TOPIC, [json.dumps(m).encode() for m in stalls])
    served += 1010 + 1012

    def france() -> dict | None:
        rows = get_json(stack.url("api", f"/indicateurs?indicateur={IND}&exact=true&limit=100"))
        total = sum(Decimal(r["valeur"]) for r in rows)
        return rows if total == served else None

    eventually(france, 60, f"the good records of {IND} served")

    # Every other record is in the dead letters, with a reason.
    # Accepted by HTTP: the goods, then each cleaner-poison after its good.
    edge = len(REFUSED_AT_THE_EDGE)
    http_dead = {f"{http_batch}:{edge + 2 * k + 1:06d}" for k in range(len(DEAD_IN_THE_CLEANER))}
    raw_dead = {f"kafka:{raw.TOPIC}:{p}:{o}" for p, o in raw_placed[:2]} | {
        f"e2e-poison-raw:{i:06d}" for i in range(1, 1 + len(REFUSED_AT_THE_EDGE))
    }
    clean_dead = {f"e2e-poison-clean:{i:06d}" for i in (*poisoned, 11)} | {"\\ud800:000000"}
    wanted = http_dead | raw_dead | clean_dead

    def letters() -> dict[str, dict]:
        found = {
            d["record_id"]: d
            for m in read_all(bootstrap, deadletter.TOPIC)
            if (d := json.loads(m.value()))["record_id"] in wanted
        }
        assert set(found) == wanted, f"missing: {sorted(wanted - set(found))}"
        return found

    dead = eventually(letters, 60, "a dead letter for each poison record")
    assert {i: dead[f"e2e-poison-clean:{i:06d}"]["reason"] for i in poisoned} == reasons
    assert dead["e2e-poison-clean:000011"]["reason"] == "invalid_schema"
    assert "recu" in dead["e2e-poison-clean:000011"]["detail"]
    assert dead["\\ud800:000000"]["reason"] == "invalid_schema"
    assert {dead[i]["reason"] for i in http_dead} == {"invalid_year", "invalid_commune"}
    assert all(d["reason"] and d["detail"] for d in dead.values())
    texts = [v for d in dead.values() for v in (d["payload"] or {}).values() if isinstance(v, str)]
    assert texts and not any("\x00" in t for t in texts)

    # Accounting: each record the cleaner received is clean or dead, once.
    received = {f"{http_batch}:{i:06d}" for i in range(answer["accepted"])} | {
        f"e2e-poison-raw:{i:06d}" for i in range(len(records))
    }
    clean_ids = {
        r["record_id"]
        for m in read_all(bootstrap, clean.TOPIC)
        for r in json.loads(m.value())["records"]
        if r["record_id"] in received
    }
    dead_ids = {i for i in dead if i in received}
    assert clean_ids.isdisjoint(dead_ids) and clean_ids | dead_ids == received

    # The stream goes on: every service is up and a good record sent alone lands.
    for name, process in stack.running.items():
        assert process.poll() is None, f"{name} stopped:\n{stack.log_tail(name)}"
    status, _ = post(stack.url("ingestor", "/observations"), json.dumps(good(7000)).encode())
    served += 7000
    assert status == 202
    eventually(france, 60, "a good record sent after the poison")
