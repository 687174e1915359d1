"""The value every service receives: the broker's and the database's addresses."""

from __future__ import annotations

from collections.abc import Callable


class NotConfigured(SystemExit):
    """An address is missing where nothing may provide it: the command ends
    with this message (no traceback), before anything is published."""


def not_configured(variable: str) -> str:
    raise NotConfigured(f"{variable} is not set; set it to your server's address")


class Servers:
    """The broker's and the database's addresses, with the librdkafka keys
    every Kafka client takes (TLS, SASL).

    An address not given is asked of ``missing`` (with the name of its
    variable) when first used, so that a service that needs only the
    database never asks for a broker: the local commands start an embedded
    server there (``itte/embedded.py``); by default it is :class:`NotConfigured`."""

    def __init__(
        self,
        kafka_bootstrap_servers: str | None = None,
        database_url: str | None = None,
        *,
        kafka_security: dict[str, str] | None = None,
        missing: Callable[[str], str] = not_configured,
    ) -> None:
        self.kafka_security = kafka_security or {}
        self._kafka = kafka_bootstrap_servers
        self._database = database_url
        self._missing = missing

    @property
    def kafka_bootstrap_servers(self) -> str:
        if self._kafka is None:
            self._kafka = self._missing("KAFKA_BOOTSTRAP_SERVERS")
        return self._kafka

    @property
    def database_url(self) -> str:
        if self._database is None:
            self._database = self._missing("DATABASE_URL")
        return self._database
