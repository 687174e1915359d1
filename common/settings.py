"""Settings shared by every service; each service extends them with its own."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.logs import LogFormat


def revealed(given: Mapping[str, SecretStr | None]) -> dict[str, str]:
    """The secrets that are set, by name, in clear (for the one call that needs them)."""
    return {n: secret.get_secret_value() for n, secret in given.items() if secret is not None}


# Written by `itte up` in its state folder: the commands and services run
# with that folder (and no ITTE_ENVIRONMENT) are local runs too.
LOCAL_MARK = "local-run"


class CommonSettings(BaseSettings):
    """Read once from the environment (``ITTE_*``, plus the two addresses below).

    When ``KAFKA_BOOTSTRAP_SERVERS`` or ``DATABASE_URL`` is unset the service
    starts, or joins, the embedded broker and Postgres kept in ``state_dir``.
    """

    model_config = SettingsConfigDict(
        env_prefix="ITTE_",
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        env_ignore_empty=True,  # compose passes unset optional variables as ""
    )

    kafka_bootstrap_servers: str | None = Field(None, validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    state_dir: Path = Field(Path(".itte"), description="Embedded servers' data and logs.")
    topic_partitions: int = Field(4, ge=1)
    log_level: str = "INFO"
    log_format: LogFormat = Field("text", description="`json`: one JSON object per line.")
    catalogue: Path | None = Field(
        None, description="Indicator catalogue (TOML); default: shipped."
    )
    environment: Literal["local", "production"] | None = Field(
        None,
        description="`local`: embedded servers, generated key and open pushes allowed. "
        "Unset: `production`, unless `itte up` made `state_dir` a local one.",
    )
    replication_factor: int | None = Field(
        None, ge=1, description="Replicas of each topic; default 3, or 1 on the embedded broker."
    )
    min_insync_replicas: int | None = Field(
        None, ge=1, description="Replicas that must acknowledge; default replication_factor − 1."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle of the brokers (PEM).")

    @property
    def local(self) -> bool:
        """Whether this is a local run: set so, or unset in a state folder
        that ``itte up`` marked (the commands run beside it join it). Any
        other start is a production one: it fails closed."""
        if self.environment is not None:
            return self.environment == "local"
        return (self.state_dir / LOCAL_MARK).exists()

    def missing(self, what: str) -> str:
        """Why a production run refuses to start without ``what``."""
        why = (
            "ITTE_ENVIRONMENT=production"
            if self.environment
            else "ITTE_ENVIRONMENT is unset, so production"
        )
        return f"{what} ({why}; local runs are `itte up`'s, or ITTE_ENVIRONMENT=local)"

    def replication(self) -> tuple[int, int]:
        """(replication factor, min.insync.replicas) of the topics itte creates:
        right for a 3-broker cluster by default, 1 on the single embedded broker."""
        factor = self.replication_factor or (1 if self.kafka_bootstrap_servers is None else 3)
        return factor, self.min_insync_replicas or max(1, factor - 1)

    def kafka_security(self) -> dict[str, str]:
        """librdkafka's security settings, for every client (empty: PLAINTEXT)."""
        config: dict[str, str] = {}
        if self.kafka_security_protocol != "PLAINTEXT":
            config["security.protocol"] = self.kafka_security_protocol
        if self.kafka_sasl_mechanism:
            config["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            config["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password:
            config["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_cafile:
            config["ssl.ca.location"] = str(self.kafka_ssl_cafile)
        return config


# Compared case-, accent-, blank- and punctuation-insensitively (pii.field_key).
DEFAULT_PII_FIELDS = (
    "nom,prenom,nom_declarant,email,courriel,mail,telephone,tel,portable,adresse,contact"
)


class PiiSettings(CommonSettings):
    """The services that hash personal fields: the ingestor and the cleaner."""

    pii_fields: str = Field(DEFAULT_PII_FIELDS, description="Comma-separated field names.")
    pii_key: SecretStr | None = Field(
        None, description="HMAC key, 16 bytes or more; local runs generate one in state_dir."
    )
    pii_key_id: str | None = Field(None, description="Default: a fingerprint of the key.")
