"""docker-compose.yml cannot run here (no Docker engine): check its wiring."""

from __future__ import annotations

from pathlib import Path

import yaml

from common.kafka import MAX_MESSAGE_BYTES, PRODUCER_DEFAULTS
from services.aggregator.settings import AggregatorSettings
from services.api.settings import ApiSettings
from services.cleaner.settings import CleanerSettings
from services.ingestor.settings import IngestorSettings

ROOT = Path(__file__).resolve().parents[2]
PORTS = {
    "ingestor": IngestorSettings.model_fields["ingestor_port"].default,
    "cleaner": CleanerSettings.model_fields["cleaner_port"].default,
    "aggregator": AggregatorSettings.model_fields["aggregator_port"].default,
    "api": ApiSettings.model_fields["api_port"].default,
}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_runs_its_itte_command_against_kafka_and_postgres() -> None:
    services = compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert services["postgres"]["image"].startswith("postgres")
    for name in PORTS:
        service = services[name]
        assert service["command"] == name
        env = service["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert env["ITTE_ENVIRONMENT"] == "production"
        assert env[f"ITTE_{name.upper()}_HOST"] == "0.0.0.0"
        assert "${ITTE_PII_KEY:?" in env["ITTE_PII_KEY"]  # required, never a default
    assert "${ITTE_PRODUCER_TOKENS:?" in services["ingestor"]["environment"]["ITTE_PRODUCER_TOKENS"]


def test_the_schema_is_migrated_before_any_service_starts() -> None:
    services = compose()["services"]
    migrate = services["migrate"]
    assert migrate["command"] == "migrate" and migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["environment"]["DATABASE_URL"] == services["api"]["environment"]["DATABASE_URL"]
    for name in PORTS:
        after = services[name]["depends_on"]["migrate"]["condition"]
        assert after == "service_completed_successfully"


def test_prometheus_scrapes_every_service_on_its_port() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {
        t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    }
    assert targets == {f"{name}:{port}" for name, port in PORTS.items()}


def test_kafka_takes_the_largest_message_itte_writes() -> None:
    kafka = compose()["services"]["kafka"]["environment"]
    assert int(kafka["KAFKA_MESSAGE_MAX_BYTES"]) >= PRODUCER_DEFAULTS["message.max.bytes"]
    assert PRODUCER_DEFAULTS["message.max.bytes"] > MAX_MESSAGE_BYTES
    body_limit = IngestorSettings.model_fields["max_body_bytes"]
    assert body_limit.default * 2 <= MAX_MESSAGE_BYTES


def test_the_image_holds_every_package() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    dockerfile = (ROOT / "Dockerfile").read_text().splitlines()
    for package in (p.rstrip("*") for p in packages):
        assert f"COPY {package} {package}" in dockerfile
