"""The one place where the API is built, from settings read once by the
command (``itte api``), or by each worker process when there are several."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from common import http_metrics, lean, logs, migrations
from common.servers import Servers
from services.api.app import create_app, read_only_engine
from services.api.settings import ApiSettings


def http_app(settings: ApiSettings, servers: Servers) -> FastAPI:
    timeout = settings.api_statement_timeout_ms
    engine = read_only_engine(servers.database_url, settings.api_pool_size, timeout)
    migrations.require_current(engine)
    return create_app(
        engine,
        cache_bytes=settings.api_cache_mb * 2**20,
        cors_origins=settings.api_cors_origins,
        max_streams=settings.api_max_streams,
        streams_per_client=settings.api_streams_per_client,
        statement_timeout_ms=timeout,
        send_timeout=settings.api_send_timeout_seconds,
    )


def app_in_worker() -> FastAPI:
    """uvicorn's factory when ``api_workers`` > 1: each worker is a process of
    its own (no connection is shared) and reads its settings as the command did."""
    lean.service_process()  # as the command did for its own process
    settings = ApiSettings()
    # The command resolved the database's address and handed it down (serve).
    return http_app(settings, Servers(settings.kafka_bootstrap_servers, settings.database_url))


def serve(settings: ApiSettings, servers: Servers) -> None:
    if settings.api_workers == 1:
        app: FastAPI | str = http_app(settings, servers)
    else:  # uvicorn needs the factory by name; each worker builds its own app
        migrations.require_current(read_only_engine(servers.database_url, 1))
        os.environ["DATABASE_URL"] = servers.database_url  # the workers inherit it
        app = "services.api.bootstrap:app_in_worker"
        shared_metrics(settings.state_dir / "metrics-api")
    uvicorn.run(
        app,
        factory=settings.api_workers > 1,
        workers=settings.api_workers,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        log_config=logs.config(settings.log_level, settings.log_format, "api"),
    )


def shared_metrics(folder: Path) -> None:
    """Each worker writes its metrics in ``folder`` and ``/metrics`` sums them
    all (the workers inherit the variable). Emptied first: counts start at
    zero with the process, as they do with one worker."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[http_metrics.MULTIPROCESS_DIR] = str(folder)
