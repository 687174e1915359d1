"""Shared fixtures. Integration and e2e tests use real servers: the embedded
broker and Postgres (started once per session in a temporary folder), or the
ones named by KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common import catalogue, db, migrations
from common.kafka import ensure_topics
from common.servers import Servers
from itte.embedded import ensure_servers, stop_embedded

TEST_CATALOGUE = Path(__file__).parent / "catalogue.toml"
# The tests are local runs (a start with no ITTE_ENVIRONMENT is a production
# one); those of production say so, and so do their subprocesses.
os.environ.setdefault("ITTE_ENVIRONMENT", "local")


@pytest.fixture(scope="session")
def server_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the embedded servers keep their state (when they run)."""
    return tmp_path_factory.mktemp("itte-state")


@pytest.fixture(scope="session")
def servers(server_state: Path) -> Iterator[Servers]:
    state = server_state
    found = ensure_servers(
        kafka_bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        database_url=os.environ.get("DATABASE_URL"),
        state_dir=state,
    )
    ensure_topics(found.kafka_bootstrap_servers, partitions=4)
    yield found
    stop_embedded(state)


@pytest.fixture(scope="session")
def database_factory(servers: Servers) -> Callable[[], str]:
    """Returns a function that creates a fresh database, migrated, with the
    test catalogue loaded (as the aggregator loads its own at start)."""

    # Migrated and loaded once, then copied by Postgres for each test (a
    # few hundred milliseconds instead of a few seconds).
    template = f"itte_template_{uuid.uuid4().hex[:10]}"
    migrations.new_database(servers.database_url, template, catalogue.load(TEST_CATALOGUE))

    def create() -> str:
        name = f"itte_test_{uuid.uuid4().hex[:10]}"
        return db.create_database(servers.database_url, name, template=template)

    return create


@pytest.fixture
def database_url(database_factory: Callable[[], str]) -> str:
    return database_factory()


@pytest.fixture
def tmp_state(tmp_path: Path) -> Path:
    return tmp_path / "state"
