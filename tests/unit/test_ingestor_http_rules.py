"""The ingestor's HTTP rules with in-memory fakes (no broker, no database):
status codes, bounds, and no 5xx whatever the input (OpenAPI fuzzing)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from common.kafka import DeliveryError, MessageTooLarge
from services.ingestor.admission import Admission
from services.ingestor.auth import Producers, hash_token
from services.ingestor.handlers import PushHandler
from services.ingestor.http import create_app
from tests.unit.fakes import MemoryBatchLedger, MemoryIdempotencyKeys, MemoryPublisher

TOKEN = "itte_unit-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GOOD = {"indicateur": "pop", "commune": "33063", "annee": 2020, "valeur": 1}


def make_app(publisher: MemoryPublisher, keys: MemoryIdempotencyKeys | None = None) -> Any:
    observations = PushHandler(
        publisher,
        keys or MemoryIdempotencyKeys(),
        ledger=MemoryBatchLedger(),
        producers=Producers.parse(json.dumps({"ademe": hash_token(TOKEN)})),
        max_body_bytes=200_000,
        max_records=100,
    )
    return create_app(observations)


@pytest.fixture
def publisher() -> MemoryPublisher:
    return MemoryPublisher()


@pytest.fixture
def client(publisher: MemoryPublisher) -> TestClient:
    return TestClient(make_app(publisher))


def post(client: TestClient, body: bytes | str, mode: str = "atomic", **headers: str) -> Any:
    return client.post(
        f"/observations?mode={mode}",
        content=body,
        headers={**AUTH, "Content-Type": "application/json", **headers},
    )


# Refused at the edge. (A year "²" is a text within bounds: the cleaner
# dead-letters it as invalid_year, tests/e2e/test_poison.py.)
ODD = [
    '{"indicateur": "pop", "commune": "33063", "annee": "' + "5" * 5000 + '", "valeur": 1}',
    '{"indicateur": "pop", "commune": "33063", "annee": ' + "5" * 5000 + ', "valeur": 1}',
    '{"indicateur": "pop", "commune": "33063", "annee": 2020, "unite": "kg\\u0000"}',
    '{"indicateur": "pop", "commune": "33063", "annee": 2020, "sous_champ": "a\\u0000"}',
    '{"indicateur": "pop", "commune": "33063", "annee": 2020, "version": ' + str(2**63) + "}",
    '{"indicateur": "pop", "commune": "33063", "annee": 2020, "valeur": "1e999999999"}',
    '{"indicateur": "pop", "commune": "33063", "annee": 2020, "sous_champ": "' + "x" * 3000 + '"}',
    '{"indicateur": "pop", "commune": "33063", "annee": 2020, "valeur": NaN}',
    '{"indicateur": "pop", "commune": "33063", "annee": 2020, "valeur": -Infinity}',
    '{"indicateur": "pop", "commune": "33063", "annee": 2020, "nom": "\\ud800"}',
    '{"indicateur": "pop", "commune": "33063", "annee": 2020, "autre": [[[[1]]]]}',
    "[" * 50_000 + "]" * 50_000,
]


@pytest.mark.parametrize("odd", ODD, ids=range(len(ODD)))
def test_an_odd_record_is_refused_alone_and_the_good_one_published(
    client: TestClient, publisher: MemoryPublisher, odd: str
) -> None:
    body = "\n".join([json.dumps(GOOD), odd, json.dumps({**GOOD, "valeur": 2})])
    answer = post(client, body, "partial", **{"Content-Type": "application/x-ndjson"})
    assert answer.status_code == 202, answer.text
    assert (answer.json()["accepted"], [r["line"] for r in answer.json()["rejected"]]) == (2, [2])
    [(records, producer)] = publisher.published
    assert [r["valeur"] for r in records] == [1, 2] and producer == "ademe"
    atomic = post(client, body, **{"Content-Type": "application/x-ndjson"})
    assert atomic.status_code == 422 and [e["line"] for e in atomic.json()["errors"]] == [2]


@pytest.mark.parametrize("body", [b"[]", b"", b"  \n", b"[" * 100_000 + b"]" * 100_000, b"\xff"])
def test_empty_or_unreadable_bodies_are_4xx(client: TestClient, body: bytes) -> None:
    assert post(client, body).status_code in (400, 422)
    ndjson = post(client, body, **{"Content-Type": "application/x-ndjson"})
    assert ndjson.status_code in (400, 422)


def test_a_body_over_the_limit_is_413_without_content_length(client: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(30):
            yield b" " * 10_000

    answer = client.post("/observations", content=chunks(), headers=AUTH)
    assert answer.status_code == 413


def test_a_message_too_large_is_413_and_frees_the_idempotency_key() -> None:
    keys = MemoryIdempotencyKeys()
    client = TestClient(make_app(MemoryPublisher(MessageTooLarge("33 MB")), keys))
    answer = post(client, json.dumps([GOOD]), **{"Idempotency-Key": "k1"})
    assert answer.status_code == 413 and keys.keys == {}


def test_broker_away_is_503_and_frees_the_key() -> None:
    keys = MemoryIdempotencyKeys()
    client = TestClient(make_app(MemoryPublisher(DeliveryError("away")), keys))
    answer = post(client, json.dumps([GOOD]), **{"Idempotency-Key": "k1"})
    assert answer.status_code == 503 and keys.keys == {}


def test_an_unexpected_failure_frees_the_key_before_the_500() -> None:
    keys = MemoryIdempotencyKeys()
    client = TestClient(
        make_app(MemoryPublisher(RuntimeError("bug")), keys), raise_server_exceptions=False
    )
    answer = post(client, json.dumps([GOOD]), **{"Idempotency-Key": "k1"})
    assert answer.status_code == 500 and keys.keys == {}


def test_bad_parameters_are_422_like_every_refusal(client: TestClient) -> None:
    answer = post(client, json.dumps(GOOD), mode="everything")
    assert answer.status_code == 422 and answer.json()["detail"].startswith("invalid request")


def test_the_openapi_describes_the_body_in_its_three_forms(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/observations"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-ndjson"}
    record, array = content["application/json"]["schema"]["oneOf"]
    assert "indicateur" in record["required"] and array["type"] == "array"
    assert operation["responses"]["422"]["content"]["application/json"]["schema"]


@schemathesis.serializer("application/x-ndjson")
def ndjson_body(ctx: Any, value: Any) -> bytes:
    """The generated text as the body: any lines, valid or not."""
    return str(value).encode("utf-8", "surrogatepass")


fuzzed = schemathesis.openapi.from_asgi("/openapi.json", make_app(MemoryPublisher()))


@fuzzed.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_ingestor_fail(case: Any) -> None:
    # The other checks hold: no 5xx, every answer as declared. Left out: the
    # two that guess the status of data the schema allows or forbids: a
    # documented limit rightly answers 413, a reused Idempotency-Key 422.
    case.call_and_validate(
        headers=AUTH, excluded_checks=[negative_data_rejection, positive_data_acceptance]
    )


def test_requests_are_counted_by_route_template_and_status(client: TestClient) -> None:
    from prometheus_client import REGISTRY

    def count(handler: str, method: str, status: str) -> float:
        labels = {"handler": handler, "method": method, "status": status}
        return REGISTRY.get_sample_value("itte_http_requests_total", labels) or 0.0

    series = [
        ("/observations", "POST", "202"),
        ("/observations/{batch_id}", "GET", "404"),
        ("none", "GET", "404"),
    ]
    before = [count(*s) for s in series]
    assert post(client, json.dumps(GOOD)).status_code == 202
    for batch_id in ("0" * 32, "other-id"):  # one template, whatever the id
        assert client.get(f"/observations/{batch_id}", headers=AUTH).status_code == 404
    assert client.get("/no/such/path/" + "x" * 500).status_code == 404
    assert client.get("/readyz").status_code == 200  # probes are not counted
    assert [count(*s) - b for s, b in zip(series, before, strict=True)] == [1, 2, 1]


class HeldPublisher(MemoryPublisher):
    """Publishes once ``go`` is set: pushes stay in progress meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()

    def publish_whole(self, records: list[dict[str, Any]], **kwargs: Any) -> Any:
        assert self.go.wait(10), "never released"
        return super().publish_whole(records, **kwargs)


def test_pushes_beyond_those_running_and_waiting_are_503_before_their_body_is_read() -> None:
    publisher = HeldPublisher()
    app = make_app(publisher)
    app.state.admission = Admission(running=1, waiting=1)
    body = json.dumps([GOOD]).encode()

    async def scenario() -> list[Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            def push() -> Any:
                return client.post("/observations", content=body, headers=AUTH)

            running = asyncio.create_task(push())
            await asyncio.sleep(0.2)
            waiting = asyncio.create_task(push())
            await asyncio.sleep(0.2)
            refused = await push()  # one running, one waiting: no room
            publisher.go.set()
            return [refused, await running, await waiting]

    refused, running, waiting = asyncio.run(scenario())
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert "too many pushes" in refused.json()["detail"]
    assert (running.status_code, waiting.status_code) == (202, 202)
    assert len(publisher.published) == 2  # the refused push published nothing


def test_an_admission_needs_room_for_one_push() -> None:
    with pytest.raises(ValueError):
        Admission(running=0, waiting=4)
