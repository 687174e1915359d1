"""The four services as separate processes, as an operator would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from common.db import with_database
from common.servers import Servers
from itte.embedded import free_port
from itte.processes import SERVICES, Processes, instances
from services.ingestor.auth import hash_token

T = TypeVar("T")
PORT_SETTING = {
    "ingestor": "ITTE_INGESTOR_PORT",
    "cleaner": "ITTE_CLEANER_PORT",
    "aggregator": "ITTE_AGGREGATOR_PORT",
    "api": "ITTE_API_PORT",
}


def eventually(probe: Callable[[], T | None], timeout: float, what: str, poll: float = 0.25) -> T:
    """Poll ``probe`` until it returns something truthy (bounded, no bare
    sleeps), every ``poll`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except (OSError, ValueError, KeyError, AssertionError) as exc:
            last = exc
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


PRODUCER_TOKEN = "itte_e2e-test-token-not-secret"
OTHER_TOKEN = "itte_e2e-other-producer-token-not-secret"  # producer "autre"


def post(
    url: str,
    body: bytes | None,
    content_type: str = "application/json",
    token: str | None = PRODUCER_TOKEN,
) -> tuple[int, Any]:
    """POST ``body`` (GET when it is None) as the producer of ``token``: (status, JSON)."""
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method="GET" if body is None else "POST")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class Stack(Processes):
    """The four services on their own ports, configured as in production;
    ``workers`` cleaners and aggregators (``cleaner-2``…: see itte.processes)."""

    def __init__(self, servers: Servers, workdir: Path, workers: int = 1) -> None:
        self.workdir = workdir
        # The state folder of the embedded Postgres, when the stack runs on it
        # (the chaos faults then restart it for real).
        self.postgres_state: Path | None = None
        ports = {name: free_port() for name in instances(dict.fromkeys(SERVICES, 0), workers)}
        super().__init__(
            {
                **os.environ,
                "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap_servers,
                "DATABASE_URL": servers.database_url,
                "ITTE_STATE_DIR": str(workdir / "state"),
                "ITTE_PII_KEY": "e2e-test-key-not-secret-0123456789",
                "ITTE_ENVIRONMENT": "production",
                "ITTE_LOG_FORMAT": "json",  # as a log pipeline reads them
                "ITTE_PRODUCER_TOKENS": json.dumps(
                    {"e2e": hash_token(PRODUCER_TOKEN), "autre": hash_token(OTHER_TOKEN)}
                ),
                "ITTE_CATALOGUE": str(Path(__file__).parents[1] / "catalogue.toml"),
                **{
                    PORT_SETTING[name]: str(port)
                    for name, port in ports.items()
                    if name in SERVICES
                },
            },
            log_dir=workdir,
            ports=ports,
        )

    def url(self, name: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def ready(self, name: str, timeout: float = 90) -> None:
        def healthy() -> bool:
            process = self.running[name]
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.log_tail(name)}")
            # 503 until ready (the faust services: once they own partitions).
            return get_json(self.url(name, "/readyz"))["status"] == "ok"

        eventually(healthy, timeout, f"{name} to be ready")

    def start_all(self) -> None:
        super().start_all()
        for name in self.names:
            self.ready(name)

    def itte(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """An ``itte`` command, configured as the services are (and ``env``)."""
        return subprocess.run(
            [sys.executable, "-m", "itte", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ingest_file(self, path: Path) -> str:
        done = self.itte("ingest", str(path))
        assert done.returncode == 0, done.stderr
        return done.stdout


def push_values(
    stack: Stack, indicateur: str, values: dict[str, int], version: int, annee: int = 2026
) -> None:
    """One request of ``indicateur`` in ``annee``: commune → value, at ``version``."""
    body = [
        {"indicateur": indicateur, "commune": c, "annee": annee, "valeur": v, "version": version}
        for c, v in values.items()
    ]
    status, answer = post(stack.url("ingestor", "/observations"), json.dumps(body).encode())
    assert status == 202, answer


def post_with_retry(stack: Stack, body: list[dict[str, Any]]) -> None:
    """What a well-behaved producer does: retry until acknowledged."""

    def attempt() -> bool:
        try:
            status, _ = post(stack.url("ingestor", "/observations"), json.dumps(body).encode())
        except (urllib.error.URLError, ConnectionError):
            return False
        return status == 202

    eventually(attempt, 90, "the ingestor to accept a post")


def allow_connections(database_url: str, allowed: bool) -> None:
    """Refuse new connections to the database and end the open ones (as a
    restart does), or allow them again."""
    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(with_database(database_url, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(name), sql.SQL("true" if allowed else "false")
            )
        )
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
