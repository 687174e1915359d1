"""Liveness and readiness of every service, and the operations metrics
their handlers keep: each answers 503 with the reason when it cannot work."""

from __future__ import annotations

import json
import time
from importlib.metadata import version
from types import SimpleNamespace

import psycopg
import pytest
from fastapi.testclient import TestClient
from faust.types import TP
from prometheus_client import REGISTRY

from common.faust_app import readiness
from common.lanes import BulkLane
from common.retry import Health
from common.servers import Servers
from services.aggregator.handlers import Relay
from services.api.app import create_app, read_only_engine
from services.ingestor.auth import Producers
from services.ingestor.handlers import PushHandler
from services.ingestor.ledger import PostgresBatchLedger
from tests.unit.fakes import MemoryBatchLedger, MemoryIdempotencyKeys, MemoryOutbox, MemoryPublisher
from tests.unit.test_aggregator_batches import handler, message, record

NOWHERE = "postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=2"


def test_the_api_without_its_database_is_alive_not_ready_and_answers_503() -> None:
    client = TestClient(create_app(read_only_engine(NOWHERE, 1)))
    assert client.get("/livez").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "database unavailable" in ready.json()["reason"]
    answer = client.get("/indicateurs?departement=33")
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "5")


def observations(publisher: MemoryPublisher, ledger: MemoryBatchLedger) -> PushHandler:
    return PushHandler(
        publisher,
        MemoryIdempotencyKeys(),
        ledger=ledger,
        producers=Producers.parse(None),
        max_body_bytes=1000,
        max_records=10,
    )


def test_the_ingestor_is_ready_with_its_broker_and_says_when_postgres_is_away() -> None:
    away = psycopg.OperationalError("refused")
    ok = observations(MemoryPublisher(), MemoryBatchLedger()).readiness()
    assert (ok.status, ok.content["database"]) == (200, "ok")
    degraded = observations(MemoryPublisher(), MemoryBatchLedger(away)).readiness()
    assert (degraded.status, degraded.content["database"]) == (200, "unavailable")
    assert "database unavailable" in degraded.content["reason"]
    down = observations(MemoryPublisher(RuntimeError("x")), MemoryBatchLedger()).readiness()
    assert down.status == 503 and "broker unreachable" in down.content["reason"]


def faust_app(*partitions: tuple[str, int]) -> SimpleNamespace:
    assigned = {TP(t, p) for t, p in partitions}
    return SimpleNamespace(consumer=SimpleNamespace(assignment=lambda: assigned))


def test_a_faust_service_is_ready_with_partitions_and_no_retry_loop() -> None:
    health = Health("unit-ready")
    body, status = readiness(faust_app(), "cleaner", health, require_partitions=True)  # type: ignore[arg-type]
    assert (status, body["status"]) == (503, "waiting")
    app = faust_app(("indicators.raw", 0))
    body, status = readiness(app, "cleaner", health, require_partitions=True)  # type: ignore[arg-type]
    assert (status, body["partitions"]) == (200, ["indicators.raw:0"])
    health.failed(psycopg.OperationalError('connection to server at "db.internal" (10.0.0.5)'))
    body, status = readiness(app, "cleaner", health, require_partitions=True)  # type: ignore[arg-type]
    assert status == 503 and body["reason"].startswith("OperationalError")
    assert "db.internal" not in json.dumps(body) and "10.0.0.5" not in json.dumps(body)


def test_a_service_is_ready_only_once_its_bulk_lane_owns_partitions() -> None:
    health = Health("unit-lane")
    lane = BulkLane(
        Servers("127.0.0.1:1", "postgresql://x"),
        group="g",
        topic="indicators.raw.bulk",
        handle=lambda message: None,
        health=health,
    )
    app = faust_app(("indicators.raw", 0))
    body, status = readiness(app, "cleaner", health, require_partitions=True)  # type: ignore[arg-type]
    assert status == 503 and "indicators.raw.bulk" in body["reason"]
    lane._assigned(None, [SimpleNamespace(topic="indicators.raw.bulk", partition=1)])  # type: ignore[arg-type]
    assert readiness(app, "cleaner", health, require_partitions=True)[1] == 200  # type: ignore[arg-type]
    lane._revoked(None, [SimpleNamespace(topic="indicators.raw.bulk", partition=1)])  # type: ignore[arg-type]
    assert readiness(app, "cleaner", health, require_partitions=True)[1] == 503  # type: ignore[arg-type]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_retries_and_time_failing_are_metrics() -> None:
    health = Health("unit-retries")
    health.failed(ConnectionError("away"))
    health.failing_since = time.time() - 42
    health.failed(ConnectionError("still away"))
    assert sample("itte_retries_total", service="unit-retries") == 2
    assert sample("itte_failing_seconds", service="unit-retries") >= 42
    health.recovered()
    assert sample("itte_failing_seconds", service="unit-retries") == 0


def test_the_aggregator_measures_freshness_from_acceptance() -> None:
    batches, _, _, relay = handler()
    stages = ("stored", "published")
    before = {
        (stage, kind): sample(f"itte_freshness_seconds_{kind}", service="aggregator", stage=stage)
        for stage in stages
        for kind in ("count", "sum")
    }
    ten_seconds_ago = int((time.time() - 10) * 1e6)
    relay.committed(
        batches.handle([message({**record("33063", "1", "f:000000"), "recu": ten_seconds_ago})])
    )
    relay.committed(batches.handle([message(record("33063", "1", "g:000000"))]))  # recu 0
    relay.handle()
    for stage in stages:
        labels = {"service": "aggregator", "stage": stage}
        assert sample("itte_freshness_seconds_count", **labels) == before[(stage, "count")] + 1
        added = sample("itte_freshness_seconds_sum", **labels) - before[(stage, "sum")]
        assert 10 <= added < 60


def test_build_info_names_the_version() -> None:
    [metric] = [m for m in REGISTRY.collect() if m.name == "itte_build_info"]
    [found] = metric.samples
    assert found.value == 1 and found.labels["version"] == version("itte")


def test_a_failed_relay_measures_its_batches_at_the_next_run_once() -> None:
    batches, _, _, _ = handler()
    relay = Relay(MemoryOutbox(failures=1))
    labels = {"service": "aggregator", "stage": "published"}
    before = sample("itte_freshness_seconds_count", **labels)
    five_seconds_ago = int((time.time() - 5) * 1e6)
    for rid in ("h:000000", "i:000000"):
        outcome = batches.handle([message({**record("33063", "1", rid), "recu": five_seconds_ago})])
        relay.committed(outcome)
    with pytest.raises(ConnectionError):
        relay.handle()
    assert sample("itte_freshness_seconds_count", **labels) == before
    relay.handle()
    relay.handle()  # nothing new committed: nothing measured again
    assert sample("itte_freshness_seconds_count", **labels) == before + 2


def test_readiness_names_no_host_port_or_user_of_the_database() -> None:
    # Anyone may read /readyz (issue #30): the log, not the answer, says where.
    secret = "postgresql://itte_secret_user@127.0.0.1:1/nothing?connect_timeout=2"
    why = PostgresBatchLedger(secret).reachable()
    assert why is not None and why.startswith("database unavailable")
    assert not any(part in why for part in ("itte_secret_user", "127.0.0.1", "port 1", ":1"))
    answer = TestClient(create_app(read_only_engine(secret, 1))).get("/readyz")
    assert answer.status_code == 503
    assert not any(part in answer.text for part in ("itte_secret_user", "127.0.0.1"))
