"""HTTP adapter of the ingestor (FastAPI)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app
from pydantic import BaseModel, Field

from itte import metrics
from itte.kafka import DeliveryError, MessageTooLarge
from schemas.raw import RawObservation
from services.ingestor.auth import Producers
from services.ingestor.batching import (
    BodyError,
    LineError,
    parse_json_body,
    parse_ndjson_body,
    validate,
)
from services.ingestor.ports import IdempotencyKeys, WholePublisher
from services.ingestor.publisher import SERVICE

NDJSON_TYPES = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/json-lines",
)
# When authentication is off (local runs), requests share idempotency keys
# under this name, and their records carry no producer, like files and
# Kafka-native records: all of them are one unidentified producer.
ANONYMOUS = "anonyme"


class Rejected(BaseModel):
    line: int
    error: str


class Accepted(BaseModel):
    accepted: int
    batch_ids: list[str]
    rejected: list[Rejected] = []


class Refusal(BaseModel):
    """A refused request: nothing of it was published."""

    detail: str
    errors: list[Rejected] | None = Field(None, description="Each bad line and why.")


def request_body_schema(max_records: int) -> dict[str, Any]:
    """What ``POST /observations`` reads, for OpenAPI (FastAPI cannot infer it:
    the handler reads the raw body to accept three forms)."""
    record = RawObservation.model_json_schema()
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [record, {"type": "array", "items": record, "maxItems": max_records}]
                }
            },
            **{
                media: {
                    "schema": {
                        "type": "string",
                        "description": "One RawObservation as JSON per line.",
                    }
                }
                for media in NDJSON_TYPES[:1]
            },
        },
    }


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


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed ``limit`` bytes
    (whatever Content-Length says, and without holding more than that)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    publisher: WholePublisher,
    *,
    producers: Producers,
    idempotency: IdempotencyKeys,
    max_body_bytes: int,
    max_records: int,
) -> FastAPI:
    app = FastAPI(
        title="itte ingestor",
        version="0.1.0",
        description="Push commune-level indicator observations.",
    )
    app.mount("/metrics", make_asgi_app())

    @app.exception_handler(RequestValidationError)
    async def invalid_parameters(request: Request, exc: RequestValidationError) -> JSONResponse:
        """Bad query parameters or headers, answered like every other refusal."""
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return refuse(422, f"invalid request: {problems}", "invalid_parameters")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "service": SERVICE}

    @app.post(
        "/observations",
        status_code=202,
        response_model=Accepted,
        responses={
            status: {"model": Refusal, "description": description}
            for status, description in (
                (400, "Unreadable body"),
                (401, "Missing or unknown bearer token"),
                (409, "A request with this Idempotency-Key is in progress"),
                (413, "Body or record count over the limit"),
                (422, "Invalid records (each line named), or no record; nothing published"),
                (503, "Broker unavailable: nothing published, retry later"),
            )
        },
        openapi_extra={"requestBody": request_body_schema(max_records)},
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
        body = await read_body(request, max_body_bytes)
        if body is None:
            return refuse(413, f"body larger than {max_body_bytes} bytes", "too_large")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        parse = parse_ndjson_body if content_type in NDJSON_TYPES else parse_json_body
        try:
            # Off the event loop: a body of several MB takes a while to parse.
            parsed = await asyncio.to_thread(lambda: validate(parse(body)))
        except BodyError as exc:
            return refuse(
                400, "unreadable body, nothing was published", "unreadable_body", exc.errors
            )
        count = len(parsed.records) + len(parsed.errors)
        if count == 0:
            return refuse(422, "the body holds no record, nothing was published", "no_records")
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
                publisher.publish_whole,
                records,
                source="http",
                producer=producer if producers.required else None,
            )
        except BaseException as exc:
            # Nothing was published: the key is free for the producer's retry.
            if idempotency_key:
                await asyncio.to_thread(idempotency.release, producer, idempotency_key)
            if isinstance(exc, MessageTooLarge):
                return refuse(413, f"too large for one Kafka message: {exc}", "too_large")
            if isinstance(exc, DeliveryError):
                return refuse(
                    503,
                    f"broker unavailable, nothing was published: {exc}",
                    "broker_unavailable",
                    headers={"Retry-After": "5"},
                )
            raise
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
