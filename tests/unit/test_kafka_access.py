"""Kafka with identities (docker-compose.yml, itte kafka-access): each
service logs in as itself and may do only what common/topology.py says. No
broker that enforces ACLs runs here (the embedded Tansu keeps users in
memory only and enforces none; Apache Kafka's distribution is not
reachable), so the grants are checked against the topology and the code,
and the compose wiring against the grants."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType, ScramMechanism

from common.kafka import topic_specs
from common.lag import BULK_GROUPS, GROUPS
from common.topology import ACCESS, TOPICS, principal
from itte.kafka_access import AccessSettings, bindings, grant
from tests.unit.test_deployment import ROOT, compose

KAFKA_CLIENTS = ("ingestor", "cleaner", "aggregator")


def rights() -> dict[tuple[str, str, str], set[str]]:
    """(principal's service, resource kind, operation) → resource names."""
    found: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for b in bindings():
        service = b.principal.removeprefix("User:itte-")
        pattern = "*" if b.resource_pattern_type == ResourcePatternType.PREFIXED else ""
        found[service, b.restype.name, b.operation.name].add(b.name + pattern)
    return found


def test_the_topology_names_the_code_s_topics_and_groups() -> None:
    assert set(TOPICS) == {spec.topic for spec in topic_specs(1)}
    for service in ("cleaner", "aggregator"):
        assert ACCESS[service].groups == dict((GROUPS[service], BULK_GROUPS[service]))
        # faust's consumer group is its app id: its own topics share the prefix.
        assert GROUPS[service][0] == principal(service)


def test_each_topic_has_the_writers_and_readers_of_the_pipeline_and_no_other() -> None:
    granted = rights()
    writers = {
        topic: {s for s in ACCESS if topic in granted[s, "TOPIC", "WRITE"]} for topic in TOPICS
    }
    assert writers == {
        "indicators.raw": {"ingestor"},
        "indicators.raw.bulk": {"ingestor"},
        "indicators.clean": {"cleaner"},
        "indicators.clean.bulk": {"cleaner"},
        "indicators.deadletter": {"cleaner", "aggregator"},
        "indicators.aggregates": {"aggregator"},
        "indicators.editions": set(),  # `itte referentiel charger`, with an operator's login
    }
    readers = {
        topic: {s for s in ACCESS if topic in granted[s, "TOPIC", "READ"]} for topic in TOPICS
    }
    assert readers == {
        "indicators.raw": {"cleaner"},
        "indicators.raw.bulk": {"cleaner"},
        "indicators.clean": {"aggregator"},
        "indicators.clean.bulk": {"aggregator"},
        "indicators.deadletter": {"aggregator"},
        # Subscribers read it with logins of their own (docs/operations.md).
        "indicators.aggregates": set(),
        "indicators.editions": {"cleaner", "ingestor"},
    }
    assert granted["monitor", "TOPIC", "WRITE"] == granted["monitor", "TOPIC", "READ"] == set()


def test_no_grant_reaches_beyond_a_service_s_own_part() -> None:
    for b in bindings():
        service = b.principal.removeprefix("User:itte-")
        assert b.principal == f"User:{principal(service)}" and service in ACCESS
        assert b.host == "*" and b.permission_type.name == "ALLOW"
        assert b.restype in (ResourceType.TOPIC, ResourceType.GROUP), b  # never the cluster
        assert b.operation not in (AclOperation.ALL, AclOperation.ALTER, AclOperation.DELETE), b
        if b.resource_pattern_type == ResourcePatternType.PREFIXED:
            # faust's own topics only, under its app id
            assert ACCESS[service].faust and b.name == f"{principal(service)}-", b
            assert b.restype == ResourceType.TOPIC
        else:
            assert b.resource_pattern_type == ResourcePatternType.LITERAL
    granted = rights()
    for service in ACCESS:  # a consumer group is read in by its own service only
        assert granted[service, "GROUP", "READ"] == set(ACCESS[service].groups)
    assert len(bindings()) == len(set(map(str, bindings())))  # each entry once


class FakeAdmin:
    """The two calls grant makes, recorded; every future done."""

    def __init__(self) -> None:
        self.logins: list[Any] = []
        self.acls: list[Any] = []

    @staticmethod
    def _done(keys: list[Any]) -> dict[Any, Any]:
        class Done:
            def result(self) -> None:
                return None

        return {key: Done() for key in keys}

    def alter_user_scram_credentials(self, alterations: list[Any], **_: Any) -> dict[Any, Any]:
        self.logins += alterations
        return self._done([a.user for a in alterations])

    def create_acls(self, entries: list[Any], **_: Any) -> dict[Any, Any]:
        self.acls += entries
        return self._done(entries)


def test_grant_sets_one_scram_login_a_service_then_the_acls() -> None:
    admin = FakeAdmin()
    passwords = {service: f"password of {service}" for service in ACCESS}
    said = grant(admin, passwords)  # type: ignore[arg-type]
    assert {a.user: a.password for a in admin.logins} == {
        principal(s): p.encode() for s, p in passwords.items()
    }
    for login in admin.logins:
        assert login.scram_credential_info.mechanism == ScramMechanism.SCRAM_SHA_512
        assert login.scram_credential_info.iterations >= 4096
    assert admin.acls == bindings()
    assert said[-1] == f"{len(bindings())} ACL entries"


def test_a_missing_password_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for service in ACCESS:
        monkeypatch.delenv(f"ITTE_KAFKA_PASSWORD_{service.upper()}", raising=False)
    monkeypatch.setenv("ITTE_KAFKA_PASSWORD_INGESTOR", "x")
    with pytest.raises(SystemExit, match=r"ITTE_KAFKA_PASSWORD_CLEANER, .*MONITOR not set"):
        AccessSettings().passwords()


def test_compose_logs_each_service_in_as_itself() -> None:
    services = compose()["services"]
    for name in KAFKA_CLIENTS:
        env = services[name]["environment"]
        assert env["ITTE_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        assert env["ITTE_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["ITTE_KAFKA_SASL_USERNAME"] == principal(name)
        assert env["ITTE_KAFKA_SASL_PASSWORD"].startswith(
            f"${{ITTE_KAFKA_PASSWORD_{name.upper()}:?"
        )
        assert services[name]["depends_on"]["kafka-access"] == {
            "condition": "service_completed_successfully"
        }
    exporter = services["kafka-exporter"]["command"]
    assert f"--sasl.username={principal('monitor')}" in exporter
    assert any(a.startswith("--sasl.password=${ITTE_KAFKA_PASSWORD_MONITOR:?") for a in exporter)
    access = services["kafka-access"]
    assert access["command"] == "kafka-access" and access["restart"] == "no"
    assert access["network_mode"] == "service:kafka"
    assert access["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9094"
    for service in ACCESS:
        variable = f"ITTE_KAFKA_PASSWORD_{service.upper()}"
        assert access["environment"][variable].startswith(f"${{{variable}:?")


def test_the_broker_authenticates_every_client_and_allows_nothing_unlisted() -> None:
    env = compose()["services"]["kafka"]["environment"]
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    for listener in env["KAFKA_LISTENERS"].split(","):
        name, address = listener.split("://")
        if protocols[name] == "PLAINTEXT":  # ANONYMOUS there: from inside the container only
            assert address.startswith("127.0.0.1:"), listener
        else:
            assert protocols[name] == "SASL_PLAINTEXT", listener
    # The superuser is the one who reaches those listeners: nobody else.
    assert env["KAFKA_SUPER_USERS"] == "User:ANONYMOUS"
    assert "ADMIN://127.0.0.1:9094" in env["KAFKA_LISTENERS"].split(",")


def test_no_itte_port_is_published_but_the_tls_proxy_s() -> None:
    services = compose()["services"]
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"caddy"}
    assert sorted(services["caddy"]["ports"]) == ["443:443", "80:80"]
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    for upstream in ("api:8000", "ingestor:8001", "grafana:3000"):
        assert upstream in caddyfile
    on_edge = {name for name, s in services.items() if "edge" in s.get("networks", [])}
    assert on_edge == {"caddy", "api", "ingestor", "grafana"}
