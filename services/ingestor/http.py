"""HTTP adapter of the ingestor (FastAPI)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app
from pydantic import BaseModel

from itte import metrics
from itte.kafka import DeliveryError
from services.ingestor.batching import BodyError, parse_json_body, parse_ndjson_body
from services.ingestor.publisher import SERVICE, RawPublisher

NDJSON_TYPES = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/json-lines",
)


class Accepted(BaseModel):
    accepted: int
    batch_ids: list[str]


def create_app(publisher: RawPublisher, *, max_body_bytes: int) -> FastAPI:
    app = FastAPI(
        title="itte ingestor",
        version="0.1.0",
        description="Push commune-level indicator observations.",
    )
    app.mount("/metrics", make_asgi_app())

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "service": SERVICE}

    @app.post(
        "/observations",
        status_code=202,
        response_model=Accepted,
        responses={
            400: {"description": "Unreadable body, each bad line named"},
            413: {"description": "Body too large"},
            503: {"description": "Broker unavailable: retry later"},
        },
    )
    async def post_observations(request: Request) -> Any:
        """One JSON object, a JSON array of objects, or NDJSON (one object per
        line, with `Content-Type: application/x-ndjson`). Answers once the
        broker has acknowledged every record."""
        declared = int(request.headers.get("content-length") or 0)
        if declared > max_body_bytes:
            return _too_large(max_body_bytes)
        body = await request.body()
        if len(body) > max_body_bytes:
            return _too_large(max_body_bytes)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        parse = parse_ndjson_body if content_type in NDJSON_TYPES else parse_json_body
        try:
            records = parse(body)
        except BodyError as exc:
            metrics.REFUSED.labels(SERVICE, "unreadable_body").inc()
            return JSONResponse(
                status_code=400,
                content={
                    "detail": "request refused, nothing was published",
                    "errors": [{"line": e.line, "error": e.error} for e in exc.errors],
                },
            )
        metrics.RECORDS_IN.labels(SERVICE).inc(len(records))
        try:
            published = await asyncio.to_thread(publisher.publish, records, source="http")
        except DeliveryError as exc:
            metrics.REFUSED.labels(SERVICE, "broker_unavailable").inc()
            return JSONResponse(
                status_code=503,
                headers={"Retry-After": "5"},
                content={"detail": f"broker unavailable, retry later: {exc}"},
            )
        return Accepted(accepted=published.records, batch_ids=published.batch_ids)

    return app


def _too_large(limit: int) -> JSONResponse:
    metrics.REFUSED.labels(SERVICE, "too_large").inc()
    return JSONResponse(status_code=413, content={"detail": f"body larger than {limit} bytes"})
