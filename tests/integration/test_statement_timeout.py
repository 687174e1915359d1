"""No unbounded work for an anonymous request (issue #30, point 6): every
API connection, the engine's and the pool's, has its statements cancelled
past ``ITTE_API_STATEMENT_TIMEOUT_MS``, and the answer is a 503 that says
so, not a 500."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from services.api.app import create_app, libpq_url, read_only_engine
from services.api.reads.pool import ReadPool


def test_each_api_connection_cancels_a_statement_past_its_time(database_url: str) -> None:
    engine = read_only_engine(database_url, 1, statement_timeout_ms=150)
    with engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "150ms"
    pool = ReadPool(libpq_url(engine), 1, statement_timeout_ms=150)

    async def sleep() -> None:
        await pool.open()
        try:
            await pool.read(lambda conn: conn.execute("SELECT pg_sleep(2)"))
        finally:
            await pool.close()

    with pytest.raises(psycopg.errors.QueryCanceled):
        asyncio.run(sleep())


def test_a_statement_past_its_time_is_a_503_that_says_so(database_url: str) -> None:
    engine = read_only_engine(database_url, 1, statement_timeout_ms=150)
    app = create_app(engine, statement_timeout_ms=150)

    def slow() -> dict:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_sleep(2)"))
        return {}

    app.add_api_route("/slow", slow)
    with TestClient(app) as client:
        answer = client.get("/slow")
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "5"
        assert "took too long" in answer.json()["detail"]
        assert client.get("/readyz").status_code == 200  # the connection is usable again
