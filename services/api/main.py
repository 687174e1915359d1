"""API entrypoint."""

from __future__ import annotations

import uvicorn

from itte.embedded import database_address
from services.api.app import create_app, read_only_engine, wait_for_schema
from services.api.settings import ApiSettings


def serve(settings: ApiSettings) -> None:
    database_url = database_address(settings)
    engine = read_only_engine(database_url, settings.api_pool_size)
    wait_for_schema(engine)
    uvicorn.run(
        create_app(engine),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
    )
