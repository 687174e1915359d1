"""Fresh embedded servers and the four services, for one benchmark run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from itte import catalogue, db
from itte.embedded import Servers, ensure_servers, free_port, stop_embedded
from itte.kafka import ensure_topics
from itte.runner import start_services, stop_services, wait_http


@dataclass(frozen=True)
class Stack:
    servers: Servers
    env: dict[str, str]
    ports: dict[str, int]
    logs: Path

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service.upper()]}{path}"


@contextmanager
def running_stack(
    state: Path, catalogue_path: Path | None = None, **settings: str
) -> Iterator[Stack]:
    """``settings``: extra ITTE_* variables for the services, e.g. BATCH_RECORDS="1"."""
    servers = ensure_servers(kafka_bootstrap_servers=None, database_url=None, state_dir=state)
    try:
        ensure_topics(servers.kafka_bootstrap_servers, 4)
        db.ensure_schema(db.make_engine(servers.database_url), catalogue.load(catalogue_path))
        ports = {name: free_port() for name in ("API", "INGESTOR", "CLEANER", "AGGREGATOR")}
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap_servers,
            "DATABASE_URL": servers.database_url,
            "ITTE_STATE_DIR": str(state),
            "ITTE_LOG_LEVEL": "WARNING",
            **({"ITTE_CATALOGUE": str(catalogue_path)} if catalogue_path else {}),
            **{f"ITTE_{name}_PORT": str(port) for name, port in ports.items()},
            **{f"ITTE_{name}": value for name, value in settings.items()},
        }
        processes = start_services(env, state / "logs")
        try:
            stack = Stack(servers, env, ports, state / "logs")
            wait_http(stack.url("api", "/health"), 120, processes["api"])
            wait_http(stack.url("aggregator", "/health"), 120, processes["aggregator"])
            yield stack
        finally:
            stop_services(processes)
    finally:
        stop_embedded(state)
