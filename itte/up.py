"""``itte up``: the whole pipeline as separate processes, until Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from common import db, migrations
from common.kafka import ensure_topics_for
from common.servers import Servers
from common.settings import LOCAL_MARK, CommonSettings, revealed
from itte.demo import write_demo
from itte.embedded import servers_for, stop_embedded
from itte.processes import Processes, Supervisor, instances, wait_http
from itte.prometheus import LocalPrometheus
from itte.started import UpRecord, stop
from services.aggregator.settings import AggregatorSettings
from services.api.settings import ApiSettings
from services.cleaner.settings import CleanerSettings
from services.ingestor import bootstrap as ingestor
from services.ingestor.file_ingest import ingest_files
from services.ingestor.settings import IngestorSettings


class MigrateSettings(CommonSettings):
    """``itte migrate``: the passwords of the services' logins (none: no login
    is created, the services connect as the owner in DATABASE_URL)."""

    api_db_password: SecretStr | None = None
    ingestor_db_password: SecretStr | None = None
    aggregator_db_password: SecretStr | None = None
    monitor_db_password: SecretStr | None = None

    def passwords(self) -> dict[str, str]:
        given = {
            "itte_api": self.api_db_password,
            "itte_ingestor": self.ingestor_db_password,
            "itte_aggregator": self.aggregator_db_password,
            "itte_monitor": self.monitor_db_password,
        }
        return revealed(given)


class UpSettings(IngestorSettings, ApiSettings, CleanerSettings, AggregatorSettings):
    """What ``itte up`` needs: the common settings, the services' ports it
    hands to them and to Prometheus, and the ingestor's for the demo data.
    The one start that is local unless told otherwise."""

    environment: Literal["local", "production"] | None = "local"
    prometheus_port: int = Field(9090, description="`itte up`'s Prometheus; 0: none.")
    workers: int = Field(
        1,
        ge=1,
        description="Cleaner and aggregator processes each; at most `ITTE_TOPIC_PARTITIONS` "
        "(Kafka gives each its own partitions). Instance n listens on its service's port + "
        "100·(n − 1).",
    )

    def ports(self) -> dict[str, int]:
        return {
            "ingestor": self.ingestor_port,
            "cleaner": self.cleaner_port,
            "aggregator": self.aggregator_port,
            "api": self.api_port,
        }


class Stopping(Exception):
    """SIGINT or SIGTERM reached ``itte up``."""


def stop_on_signals() -> None:
    """SIGINT and SIGTERM stop ``itte up`` wherever it is, whatever
    disposition it inherited: a shell's ``&``, nohup and CI runners start it
    with SIGINT ignored, and Python then leaves it so."""

    def on_signal(signum: int, _frame: object) -> None:
        raise Stopping(signal.Signals(signum).name)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)


def finish_on_signals() -> None:
    """While stopping, a second Ctrl-C must not cut the stop short (and leave
    processes behind): it is noted, the stop goes on; each wait is bounded."""

    def on_signal(_signum: int, _frame: object) -> None:
        print("already stopping (each process gets a bounded time, then SIGKILL)", flush=True)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)


def take_over(record: UpRecord, state_dir: Path) -> None:
    """One ``itte up`` per state folder; what a killed one left, stopped."""
    running = record.running_up()
    if running is not None:
        raise SystemExit(
            f"itte up already runs with the state folder {state_dir} (pid {running.pid}); "
            f"stop it with Ctrl-C in its terminal, `kill {running.pid}` or `itte servers stop`"
        )
    left = record.leftovers()
    if left:
        print(f"stopping {len(left)} process(es) left by an itte up that was killed", flush=True)
        stop(left)


def up(settings: UpSettings, *, demo: bool) -> None:
    if settings.workers > settings.topic_partitions:
        raise SystemExit(
            f"ITTE_WORKERS={settings.workers} is more than ITTE_TOPIC_PARTITIONS="
            f"{settings.topic_partitions}: the extra processes would get no partition"
        )
    record = UpRecord(settings.state_dir)
    take_over(record, settings.state_dir)
    stop_on_signals()
    record.write([])
    embedded = settings.kafka_bootstrap_servers is None or settings.database_url is None
    processes: Processes | None = None
    prometheus = LocalPrometheus(settings.state_dir / "prometheus", settings.prometheus_port)
    try:
        servers, processes = start(settings)
        record.write(children(processes, prometheus))
        serve(settings, servers, processes, prometheus, record, demo=demo)
    except (Stopping, KeyboardInterrupt):
        pass
    finally:
        finish_on_signals()
        print("stopping...", flush=True)
        prometheus.stop()
        if processes is not None:
            processes.stop_all()
        if embedded:
            stop_embedded(settings.state_dir)
        record.clear()


def start(settings: UpSettings) -> tuple[Servers, Processes]:
    """The servers (embedded where no address is set), the topics, the
    schema, then the services' processes."""
    servers = servers_for(settings)
    if settings.local:  # the commands run beside it, with its folder, join it
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        (settings.state_dir / LOCAL_MARK).write_text("written by itte up: a local run\n")
    ensure_topics_for(settings, servers)
    migrations.upgrade(db.make_engine(servers.database_url))
    # The services read the same settings from their environment; the
    # addresses are the ones just resolved (embedded servers started once).
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap_servers,
        "DATABASE_URL": servers.database_url,
        "ITTE_STATE_DIR": str(settings.state_dir.resolve()),
        "ITTE_ENVIRONMENT": "local" if settings.local else "production",
        **{f"ITTE_{name.upper()}_PORT": str(port) for name, port in settings.ports().items()},
    }
    ports = instances(settings.ports(), settings.workers)
    processes = Processes(env, settings.state_dir / "logs", ports)
    processes.start_all()
    return servers, processes


def children(processes: Processes, prometheus: LocalPrometheus) -> list[int]:
    """The pids to stop should this ``itte up`` be killed."""
    pids = [p.pid for p in processes.running.values() if p.poll() is None]
    if prometheus.process is not None:
        pids.append(prometheus.process.pid)
    return pids


def serve(
    settings: UpSettings,
    servers: Servers,
    processes: Processes,
    prometheus: LocalPrometheus,
    record: UpRecord,
    *,
    demo: bool,
) -> None:
    """Until a signal: ready, demo data in, addresses printed, the services
    restarted when they die."""
    api = f"http://127.0.0.1:{settings.api_port}"
    ingest = f"http://127.0.0.1:{settings.ingestor_port}"
    wait_http(f"{ingest}/readyz", 120, processes.running["ingestor"])
    wait_http(f"{api}/readyz", 120, processes.running["api"])
    print(f"itte is up ({', '.join(processes.names)}). Logs: {processes.log_dir}/", flush=True)
    watching = start_prometheus(
        prometheus, processes.ports, lambda: record.write(children(processes, prometheus))
    )
    if demo:
        # In the background: the history takes a minute, the services are
        # watched (and restarted) meanwhile.
        threading.Thread(target=load_demo, args=(settings, servers), daemon=True).start()
    print(
        f"\n  API        {api}/indicateurs   (docs: /docs)\n"
        f"  ingest     POST {ingest}/observations\n"
        f"  try        curl '{api}/indicateurs?niveau=epci"
        f"&departement=74&indicateur=population'\n"
        f"{watching}\nCtrl-C stops everything (from another terminal: "
        f"kill {os.getpid()}, or itte servers stop).",
        flush=True,
    )
    supervisor = Supervisor(processes, lambda line: print(f"  {line}", flush=True))
    pids = children(processes, prometheus)
    while True:
        supervisor.tick()
        if (now := children(processes, prometheus)) != pids:
            pids = now
            record.write(pids)
        time.sleep(0.5)


def load_demo(settings: UpSettings, servers: Servers) -> None:
    files = write_demo(settings.state_dir / "demo")
    handler = ingestor.block_handler(settings, servers)
    for summary in ingest_files(handler, files, show_progress=False):
        print(f"  demo data: {summary}", flush=True)


def start_prometheus(
    prometheus: LocalPrometheus, ports: dict[str, int], launched: Callable[[], None]
) -> str:
    """Prometheus beside the services, with the alert rules; what to print.
    ``launched``: called as soon as its process exists."""
    if not prometheus.port:
        return ""
    if not LocalPrometheus.available():
        return "  metrics    no Prometheus here (`make up` installs the Debian package)\n"
    try:
        prometheus.launch(ports, interval_seconds=5)
        launched()
        prometheus.wait_ready()
    except RuntimeError as exc:  # its port taken, say: the pipeline runs without it
        return f"  metrics    Prometheus did not start ({exc})\n"
    return f"  metrics    {prometheus.url}/alerts   (Prometheus, the alert rules of deploy/)\n"
