"""Settings shared by every service; each service extends them with its own."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """Read once from the environment (``ITTE_*``, plus the two addresses below).

    When ``KAFKA_BOOTSTRAP_SERVERS`` or ``DATABASE_URL`` is unset the service
    starts, or joins, the embedded broker and Postgres kept in ``state_dir``.
    """

    model_config = SettingsConfigDict(
        env_prefix="ITTE_", frozen=True, extra="ignore", populate_by_name=True
    )

    kafka_bootstrap_servers: str | None = Field(None, validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    state_dir: Path = Field(Path(".itte"), description="Embedded servers' data and logs.")
    topic_partitions: int = Field(4, ge=1)
    log_level: str = "INFO"
    catalogue: Path | None = Field(
        None, description="Indicator catalogue (TOML); default: shipped."
    )
    environment: Literal["local", "production"] = Field(
        "local", description="`production` refuses generated secrets."
    )
