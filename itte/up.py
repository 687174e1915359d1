"""``itte up``: the whole pipeline as separate processes, until Ctrl-C."""

from __future__ import annotations

import os
import signal
import time

from pydantic import Field, SecretStr

from common import db, migrations
from common.embedded import servers_for, stop_embedded
from common.kafka import ensure_topics_for
from common.settings import CommonSettings
from itte.demo import write_demo
from itte.processes import Processes, Supervisor, instances, wait_http
from itte.prometheus import LocalPrometheus
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

    def passwords(self) -> dict[str, str]:
        given = {
            "itte_api": self.api_db_password,
            "itte_ingestor": self.ingestor_db_password,
            "itte_aggregator": self.aggregator_db_password,
        }
        return {login: p.get_secret_value() for login, p in given.items() if p is not None}


class UpSettings(IngestorSettings, ApiSettings, CleanerSettings, AggregatorSettings):
    """What ``itte up`` needs: the common settings, the services' ports it
    hands to them and to Prometheus, and the ingestor's for the demo data."""

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


def up(settings: UpSettings, *, demo: bool) -> None:
    if settings.workers > settings.topic_partitions:
        raise SystemExit(
            f"ITTE_WORKERS={settings.workers} is more than ITTE_TOPIC_PARTITIONS="
            f"{settings.topic_partitions}: the extra processes would get no partition"
        )
    embedded = settings.kafka_bootstrap_servers is None or settings.database_url is None
    servers = servers_for(settings)
    ensure_topics_for(settings, servers)
    migrations.upgrade(db.make_engine(servers.database_url))
    # The services read the same settings from their environment; the
    # addresses are the ones just resolved (embedded servers started once).
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap_servers,
        "DATABASE_URL": servers.database_url,
        "ITTE_STATE_DIR": str(settings.state_dir.resolve()),
        **{f"ITTE_{name.upper()}_PORT": str(port) for name, port in settings.ports().items()},
    }
    ports = instances(settings.ports(), settings.workers)
    processes = Processes(env, settings.state_dir / "logs", ports)
    processes.start_all()
    prometheus = LocalPrometheus(settings.state_dir / "prometheus", settings.prometheus_port)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    api = f"http://127.0.0.1:{settings.api_port}"
    ingest = f"http://127.0.0.1:{settings.ingestor_port}"
    try:
        wait_http(f"{ingest}/readyz", 120, processes.running["ingestor"])
        wait_http(f"{api}/readyz", 120, processes.running["api"])
        print(f"itte is up ({', '.join(processes.names)}). Logs: {processes.log_dir}/", flush=True)
        watching = start_prometheus(prometheus, ports)
        if demo:
            files = write_demo(settings.state_dir / "demo")
            publisher = ingestor.publisher(settings, servers)
            for summary in ingest_files(publisher, files, show_progress=False):
                print(f"  demo data: {summary}", flush=True)
        print(
            f"\n  API        {api}/indicateurs   (docs: /docs)\n"
            f"  ingest     POST {ingest}/observations\n"
            f"  try        curl '{api}/indicateurs?niveau=epci"
            f"&departement=74&indicateur=population'\n"
            f"{watching}\nCtrl-C stops everything.",
            flush=True,
        )
        supervisor = Supervisor(processes, lambda line: print(f"  {line}", flush=True))
        while not stopping:
            supervisor.tick()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping...", flush=True)
        prometheus.stop()
        processes.stop_all()
        if embedded:
            stop_embedded(settings.state_dir)


def start_prometheus(prometheus: LocalPrometheus, ports: dict[str, int]) -> str:
    """Prometheus beside the services, with the alert rules; what to print."""
    if not prometheus.port:
        return ""
    if not LocalPrometheus.available():
        return "  metrics    no Prometheus here (`make up` installs the Debian package)\n"
    try:
        prometheus.start(ports, interval_seconds=5)
    except RuntimeError as exc:  # its port taken, say: the pipeline runs without it
        return f"  metrics    Prometheus did not start ({exc})\n"
    return f"  metrics    {prometheus.url}/alerts   (Prometheus, the alert rules of deploy/)\n"
