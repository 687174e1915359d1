"""``itte kafka-access``: one SASL/SCRAM login a service on the broker, and
the ACLs that let each do what ``common.topology`` says and nothing more.

Run as the broker's administrator (docker-compose.yml runs it in the
broker's network namespace, on the listener bound to 127.0.0.1 there) before
the services start, and again whenever a password changes. The topics are
created here too: the services only describe them, they may not create any.
"""

from __future__ import annotations

from collections.abc import Iterator

from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)
from pydantic import SecretStr

from common.lag import every_group
from common.settings import CommonSettings, revealed
from common.topology import ACCESS, TOPICS, principal

ITERATIONS = 8192  # the broker's default for SCRAM-SHA-512
Grant = tuple[ResourceType, str, ResourcePatternType, AclOperation]


def grants(service: str) -> Iterator[Grant]:
    """What ``service`` may do: each one a resource and an operation."""
    access = ACCESS[service]
    topic, group, literal = ResourceType.TOPIC, ResourceType.GROUP, ResourcePatternType.LITERAL
    for name in access.writes:
        yield topic, name, literal, AclOperation.WRITE
    for name, topics in access.groups.items():
        yield group, name, literal, AclOperation.READ
        for read in topics:
            yield topic, read, literal, AclOperation.READ
    for name in access.follows:
        yield topic, name, literal, AclOperation.READ
    # Seeing every itte topic: a service checks they exist at start, and
    # reports every group's lag (its gauge), so it describes those groups.
    for name in TOPICS:
        yield topic, name, literal, AclOperation.DESCRIBE
    for _, name, _ in every_group():
        yield group, name, literal, AclOperation.DESCRIBE
    if access.faust:  # faust's own topics, named after its app id
        prefix = f"{principal(service)}-"
        for operation in (AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE):
            yield topic, prefix, ResourcePatternType.PREFIXED, operation


def bindings() -> list[AclBinding]:
    """Every service's grants, as the broker's ACL entries (allow, any host)."""
    return [
        AclBinding(kind, name, pattern, f"User:{principal(service)}", "*", operation, allow)
        for service in ACCESS
        for kind, name, pattern, operation in dict.fromkeys(grants(service))
        for allow in (AclPermissionType.ALLOW,)
    ]


def grant(admin: AdminClient, passwords: dict[str, str], timeout: float = 30) -> list[str]:
    """Set each service's password (SCRAM-SHA-512), then the ACLs; returns
    what was done, a line each. Both are idempotent."""
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, ITERATIONS)
    logins: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(principal(service), info, passwords[service].encode())
        for service in ACCESS
    ]
    for future in admin.alter_user_scram_credentials(logins, request_timeout=timeout).values():
        future.result()
    entries = bindings()
    for future in admin.create_acls(entries, request_timeout=timeout).values():
        future.result()
    return [f"login {principal(s)} (SCRAM-SHA-512)" for s in ACCESS] + [
        f"{len(entries)} ACL entries"
    ]


class AccessSettings(CommonSettings):
    """The services' passwords on the broker (``ITTE_KAFKA_PASSWORD_INGESTOR``…)."""

    kafka_password_ingestor: SecretStr | None = None
    kafka_password_cleaner: SecretStr | None = None
    kafka_password_aggregator: SecretStr | None = None
    kafka_password_monitor: SecretStr | None = None

    def passwords(self) -> dict[str, str]:
        given = {
            "ingestor": self.kafka_password_ingestor,
            "cleaner": self.kafka_password_cleaner,
            "aggregator": self.kafka_password_aggregator,
            "monitor": self.kafka_password_monitor,
        }
        found = revealed(given)
        if missing := [f"ITTE_KAFKA_PASSWORD_{s.upper()}" for s in given if s not in found]:
            raise SystemExit(f"{', '.join(missing)} not set: one password a service")
        return found
