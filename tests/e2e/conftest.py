from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from common.kafka import ensure_topics
from common.servers import Servers
from itte.embedded import ensure_broker, stop_embedded
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


@contextmanager
def own_stack(
    workdir: Path, database_url: str, server_state: Path, workers: int = 1
) -> Iterator[Stack]:
    """A broker of its own (topics start empty), the database given, the
    services' processes (``workers`` cleaners and aggregators)."""
    broker_state = workdir / "broker"
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or ensure_broker(broker_state)
    ensure_topics(bootstrap, partitions=4)
    running = Stack(Servers(bootstrap, database_url), workdir, workers)
    if not os.environ.get("DATABASE_URL"):
        running.postgres_state = server_state
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()
        stop_embedded(broker_state)
        for name in running.names:  # shown by pytest only when a test failed
            print(f"--- {name} log ---\n{running.log_tail(name, 15)}")


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    database_factory: Callable[[], str],
    server_state: Path,
) -> Iterator[Stack]:
    """The four services, one process each, shared by the end-to-end tests."""
    with own_stack(tmp_path_factory.mktemp("e2e"), database_factory(), server_state) as running:
        yield running


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
