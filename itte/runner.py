"""``itte up``: the whole pipeline as separate processes, until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from itte import catalogue, db
from itte.demo import write_demo
from itte.embedded import servers_for, stop_embedded
from itte.kafka import ensure_topics
from itte.settings import CommonSettings

SERVICES = ("ingestor", "cleaner", "aggregator", "api")


def wait_http(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.3)


def start_services(env: dict[str, str], log_dir: Path) -> dict[str, subprocess.Popen[bytes]]:
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = {}
    for name in SERVICES:
        log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 (handed to the child)
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", "itte", name],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return processes


def stop_services(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def up(settings: CommonSettings, *, demo: bool, api_port: int, ingestor_port: int) -> None:
    embedded = settings.kafka_bootstrap_servers is None or settings.database_url is None
    servers = servers_for(settings)
    ensure_topics(servers.kafka_bootstrap_servers, settings.topic_partitions)
    db.ensure_schema(db.make_engine(servers.database_url), catalogue.load(settings.catalogue))
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap_servers,
        "DATABASE_URL": servers.database_url,
        "ITTE_STATE_DIR": str(settings.state_dir.resolve()),
        "ITTE_API_PORT": str(api_port),
        "ITTE_INGESTOR_PORT": str(ingestor_port),
    }
    log_dir = settings.state_dir / "logs"
    processes = start_services(env, log_dir)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    try:
        wait_http(f"http://127.0.0.1:{ingestor_port}/health", 120, processes["ingestor"])
        wait_http(f"http://127.0.0.1:{api_port}/health", 120, processes["api"])
        print(f"itte is up. Logs: {log_dir}/", flush=True)
        if demo:
            from services.ingestor.main import ingest_files
            from services.ingestor.settings import IngestorSettings

            files = write_demo(settings.state_dir / "demo")
            for summary in ingest_files(
                IngestorSettings(
                    kafka_bootstrap_servers=servers.kafka_bootstrap_servers,
                    database_url=servers.database_url,
                ),
                files,
            ):
                print(f"  demo data: {summary}", flush=True)
        print(
            f"\n  API        http://127.0.0.1:{api_port}/indicateurs   (docs: /docs)\n"
            f"  ingest     POST http://127.0.0.1:{ingestor_port}/observations\n"
            f"  try        curl 'http://127.0.0.1:{api_port}/indicateurs?niveau=epci"
            f"&departement=74&indicateur=population'\n\nCtrl-C stops everything.",
            flush=True,
        )
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {process.returncode}, see {log_dir}/{name}.log"
                    )
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping...", flush=True)
        stop_services(processes)
        if embedded:
            stop_embedded(settings.state_dir)
