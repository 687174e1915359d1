"""API entrypoint."""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI

from itte.embedded import database_address
from services.api.app import create_app, read_only_engine, wait_for_schema
from services.api.settings import ApiSettings


def app_from_environment() -> FastAPI:
    """Builds the app in each uvicorn worker process (no connection is shared)."""
    settings = ApiSettings(database_url=os.environ["ITTE_API_DATABASE_URL"])
    return create_app(
        read_only_engine(settings.database_url or "", settings.api_pool_size),
        cache_bytes=settings.api_cache_mb * 2**20,
    )


def serve(settings: ApiSettings) -> None:
    database_url = database_address(settings)
    wait_for_schema(read_only_engine(database_url, 1))
    os.environ["ITTE_API_DATABASE_URL"] = database_url  # for the worker processes
    uvicorn.run(
        "services.api.main:app_from_environment",
        factory=True,
        workers=settings.api_workers,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
    )
