"""HTTP adapter of the ingestor (FastAPI)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app
from pydantic import BaseModel

from itte import metrics
from itte.kafka import DeliveryError
from services.ingestor.auth import Producers
from services.ingestor.batching import (
    BodyError,
    LineError,
    parse_json_body,
    parse_ndjson_body,
    validate,
)
from services.ingestor.idempotency import IdempotencyStore
from services.ingestor.publisher import SERVICE, RawPublisher

NDJSON_TYPES = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/json-lines",
)
ANONYMOUS = "anonyme"  # the producer when authentication is off (local runs)


class Rejected(BaseModel):
    line: int
    error: str


class Accepted(BaseModel):
    accepted: int
    batch_ids: list[str]
    rejected: list[Rejected] = []


def refuse(
    status: int,
    detail: str,
    reason: str,
    errors: list[LineError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Refuse a request whole: nothing of it is published."""
    metrics.REFUSED.labels(SERVICE, reason).inc()
    content: dict[str, Any] = {"detail": detail}
    if errors is not None:
        content["errors"] = [{"line": e.line, "error": e.error} for e in errors]
    return JSONResponse(status_code=status, content=content, headers=headers)


def create_app(
    publisher: RawPublisher,
    *,
    producers: Producers,
    idempotency: IdempotencyStore,
    max_body_bytes: int,
    max_records: int,
) -> FastAPI:
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
            400: {"description": "Unreadable body"},
            401: {"description": "Missing or unknown bearer token"},
            409: {"description": "A request with this Idempotency-Key is in progress"},
            413: {"description": "Body or record count over the limit"},
            422: {"description": "Invalid records (each line named); nothing published"},
            503: {"description": "Broker unavailable: nothing published, retry later"},
        },
    )
    async def post_observations(
        request: Request,
        mode: Annotated[
            Literal["atomic", "partial"],
            Query(
                description="atomic: any invalid record refuses the request; partial: valid "
                "records are accepted, invalid ones listed"
            ),
        ] = "atomic",
        authorization: Annotated[str | None, Header()] = None,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> Any:
        """One JSON object, a JSON array of objects, or NDJSON (one object per line,
        with `Content-Type: application/x-ndjson`). Answers once the broker has
        acknowledged the records, all in one Kafka message."""
        producer = producers.identify(authorization) if producers.required else ANONYMOUS
        if producer is None:
            return refuse(
                401,
                "a valid bearer token is required",
                "unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if int(request.headers.get("content-length") or 0) > max_body_bytes:
            return refuse(413, f"body larger than {max_body_bytes} bytes", "too_large")
        body = await request.body()
        if len(body) > max_body_bytes:
            return refuse(413, f"body larger than {max_body_bytes} bytes", "too_large")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        parse = parse_ndjson_body if content_type in NDJSON_TYPES else parse_json_body
        try:
            parsed = validate(parse(body))
        except BodyError as exc:
            return refuse(
                400, "unreadable body, nothing was published", "unreadable_body", exc.errors
            )
        count = len(parsed.records) + len(parsed.errors)
        if count > max_records:
            return refuse(
                413, f"{count} records, more than {max_records} per request", "too_many_records"
            )
        if parsed.errors and (mode == "atomic" or not parsed.records):
            return refuse(
                422, "invalid records, nothing was published", "invalid_records", parsed.errors
            )
        if idempotency_key:
            previous = await asyncio.to_thread(idempotency.claim, producer, idempotency_key, body)
            if previous is not None:
                if not previous.same_body:
                    return refuse(
                        422,
                        "this Idempotency-Key was used for another body",
                        "idempotency_conflict",
                    )
                if previous.status is None:
                    return refuse(
                        409,
                        "a request with this Idempotency-Key is in progress",
                        "idempotency_in_progress",
                        headers={"Retry-After": "2"},
                    )
                return JSONResponse(
                    status_code=previous.status,
                    content=previous.response,
                    headers={"Idempotent-Replayed": "true"},
                )
        records = [record for _, record in parsed.records]
        metrics.RECORDS_IN.labels(SERVICE).inc(len(records))
        try:
            published = await asyncio.to_thread(
                publisher.publish_whole, records, source="http", producer=producer
            )
        except DeliveryError as exc:
            if idempotency_key:
                await asyncio.to_thread(idempotency.release, producer, idempotency_key)
            return refuse(
                503,
                f"broker unavailable, nothing was published: {exc}",
                "broker_unavailable",
                headers={"Retry-After": "5"},
            )
        answer = Accepted(
            accepted=published.records,
            batch_ids=published.batch_ids,
            rejected=[Rejected(line=e.line, error=e.error) for e in parsed.errors],
        )
        if idempotency_key:
            await asyncio.to_thread(
                idempotency.complete, producer, idempotency_key, 202, answer.model_dump(mode="json")
            )
        return answer

    return app
