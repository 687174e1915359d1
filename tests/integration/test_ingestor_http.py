"""The ingestor's HTTP contract against the real broker and Postgres."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from common.kafka import BlockingProducer
from common.servers import Servers
from schemas import bulk, raw
from schemas.raw import RawBatchHeader
from services.ingestor.auth import Producers, hash_token, new_token
from services.ingestor.bootstrap import http_app
from services.ingestor.handlers import PushHandler
from services.ingestor.http import create_app
from services.ingestor.idempotency import IdempotencyStore
from services.ingestor.ledger import PostgresBatchLedger
from services.ingestor.publisher import RawPublisher
from services.ingestor.settings import IngestorSettings
from tests.integration.test_kafka import read_all

TOKEN = "itte_integration-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def record(i: int = 0, **extra: object) -> dict:
    return {"indicateur": "pop", "commune": "33063", "annee": 2020, "valeur": i, **extra}


def client_for(bootstrap: str, database_url: str, **overrides: int) -> TestClient:
    # log_level 0: the broker-down test would fill the output with connection errors
    quiet = {"message.timeout.ms": 2000, "log_level": 0}
    publisher = RawPublisher(BlockingProducer(bootstrap, **quiet), 500)
    observations = PushHandler(
        publisher,
        IdempotencyStore(database_url),
        ledger=PostgresBatchLedger(database_url),
        producers=Producers.parse(json.dumps({"ademe": hash_token(TOKEN)})),
        max_body_bytes=overrides.get("body", 10_000),
        max_records=overrides.get("records", 50),
    )
    return TestClient(create_app(observations))


@pytest.fixture
def client(servers: Servers, database_url: str) -> TestClient:
    return client_for(servers.kafka_bootstrap_servers, database_url)


def envelopes(servers: Servers, batch_ids: list[str]) -> list[dict]:
    wanted = set(batch_ids)
    return [
        e
        for m in read_all(servers.kafka_bootstrap_servers, raw.TOPIC)
        if (e := json.loads(m.value()))["batch_id"] in wanted
    ]


def test_missing_or_wrong_token_is_401(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = client.post("/observations", json=[record()], headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_accepted_records_carry_the_producer_in_one_message(client, servers) -> None:
    response = client.post("/observations", json=[record(i) for i in range(30)], headers=AUTH)
    assert response.status_code == 202
    [envelope] = envelopes(servers, response.json()["batch_ids"])
    assert envelope["producer"] == "ademe" and len(envelope["records"]) == 30


def test_limits_are_413(client: TestClient) -> None:
    too_many = client.post("/observations", json=[record(i) for i in range(51)], headers=AUTH)
    assert too_many.status_code == 413 and "more than 50 records" in too_many.json()["detail"]
    big = client.post("/observations", content=b"[" + b" " * 20_000 + b"]", headers=AUTH)
    assert big.status_code == 413


def test_atomic_and_partial_modes(client: TestClient, servers: Servers) -> None:
    body = "\n".join(
        [json.dumps(record(1)), "{oops", json.dumps({"commune": "33063"}), json.dumps(record(2))]
    )
    headers = {**AUTH, "Content-Type": "application/x-ndjson"}
    atomic = client.post("/observations", content=body, headers=headers)
    assert atomic.status_code == 422
    assert [(e["line"], e["error"][:12]) for e in atomic.json()["errors"]] == [
        (2, "invalid JSON"),
        (3, "indicateur: "),
    ]
    partial = client.post("/observations?mode=partial", content=body, headers=headers)
    assert partial.status_code == 202
    answer = partial.json()
    assert answer["accepted"] == 2 and [r["line"] for r in answer["rejected"]] == [2, 3]
    [envelope] = envelopes(servers, answer["batch_ids"])
    assert [r["valeur"] for r in envelope["records"]] == [1, 2]


def test_idempotent_retry_is_acknowledged_again_and_published_once(client, servers) -> None:
    key = {**AUTH, "Idempotency-Key": uuid.uuid4().hex}
    first = client.post("/observations", json=[record(7)], headers=key)
    again = client.post("/observations", json=[record(7)], headers=key)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(envelopes(servers, first.json()["batch_ids"])) == 1
    other = client.post("/observations", json=[record(8)], headers=key)
    assert other.status_code == 422


def test_broker_down_is_503_and_the_key_can_be_retried(database_url: str) -> None:
    down = client_for("127.0.0.1:1", database_url)
    key = {**AUTH, "Idempotency-Key": "retry-me"}
    response = down.post("/observations", json=[record()], headers=key)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "nothing was published" in response.json()["detail"]
    again = down.post("/observations", json=[record()], headers=key)
    assert again.status_code == 503  # not 409: the failed claim was released


def test_a_request_at_the_documented_limits_publishes_whole(servers, database_url) -> None:
    """20,000 records in 9.5 MB (failed at the message size before): one
    message, on the bulk lane (a large request)."""
    limits = {"body": 16 * 1024 * 1024, "records": 20_000}
    client = client_for(servers.kafka_bootstrap_servers, database_url, **limits)
    body = json.dumps([record(i, libelle_indicateur="x" * 390) for i in range(20_000)]).encode()
    assert 9_000_000 < len(body) < limits["body"]
    response = client.post(
        "/observations", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text
    [batch_id] = response.json()["batch_ids"]
    [table] = [
        t
        for m in read_all(servers.kafka_bootstrap_servers, bulk.RAW_TOPIC)
        if bulk.header_of(t := bulk.read_table(m.value()), RawBatchHeader).batch_id == batch_id
    ]
    assert table.num_rows == 20_000


def test_tokens_rotate_and_scopes_change_without_a_restart(
    servers: Servers, database_url: str, tmp_path
) -> None:
    """The ingestor as its bootstrap builds it from the settings, with a
    producers file edited while it runs (issue #30, point 3)."""
    old, new = new_token(), new_token()
    path = tmp_path / "producteurs.toml"

    def write(*tokens: str, indicateurs: str = '["pop"]') -> None:
        hashes = ", ".join(f'"{hash_token(t)}"' for t in tokens)
        path.write_text(f"[ademe]\njetons = [{hashes}]\nindicateurs = {indicateurs}\n")
        time.sleep(1.1)  # the file is looked at once a second

    def push(token: str, indicateur: str = "pop") -> int:
        body = [record(indicateur=indicateur)]
        headers = {"Authorization": f"Bearer {token}"}
        return client.post("/observations", json=body, headers=headers).status_code

    write(old)
    settings = IngestorSettings(
        producers_file=path, environment="local", state_dir=tmp_path, rate_limit="unlimited"
    )
    app = http_app(settings, Servers(servers.kafka_bootstrap_servers, database_url))
    with TestClient(app) as client:  # started and shut down as uvicorn does
        assert (push(old), push(new), push(old, "co2")) == (202, 401, 403)
        write(old, new)  # rotation: both at once
        assert (push(old), push(new)) == (202, 202)
        write(new, indicateurs='["pop", "co2"]')  # the old one revoked, the scope widened
        assert (push(old), push(new), push(new, "co2")) == (401, 202, 202)
        path.write_text("[ademe\n")  # a broken edit: the last good table stays
        time.sleep(1.1)
        assert (push(old), push(new)) == (401, 202)
