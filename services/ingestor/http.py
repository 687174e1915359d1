"""HTTP entrypoint of the ingestor (FastAPI): reads the request, calls the
handler (``handlers.py``), writes its answer."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from common import http_metrics
from schemas.raw import RawObservation
from services.ingestor.handlers import (
    NDJSON_TYPES,
    Accepted,
    Answer,
    Mode,
    Observations,
    Refusal,
    Submission,
    refuse,
)
from services.ingestor.publisher import SERVICE
from services.ingestor.status import BatchStatus


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


def respond(answer: Answer) -> JSONResponse:
    return JSONResponse(answer.content, answer.status, headers=answer.headers)


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


def create_app(observations: Observations) -> FastAPI:
    app = FastAPI(
        title="itte ingestor",
        version="0.1.0",
        description="Push commune-level indicator observations.",
    )
    http_metrics.instrument(app)

    @app.exception_handler(RequestValidationError)
    async def invalid_parameters(request: Request, exc: RequestValidationError) -> JSONResponse:
        """Bad query parameters or headers, answered like every other refusal."""
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return respond(refuse(422, f"invalid request: {problems}", "invalid_parameters"))

    @app.get("/livez")
    def livez() -> dict[str, str]:
        """The process runs and answers."""
        return {"status": "ok", "service": SERVICE}

    @app.get("/readyz")
    @app.get("/health")
    async def readyz() -> JSONResponse:
        """Ready: the broker answers (503 with the reason otherwise); whether
        Postgres answers is said too."""
        return respond(await asyncio.to_thread(observations.readiness))

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
                (429, "Over this producer's rate limit: nothing published, retry after"),
                (503, "Broker unavailable: nothing published, retry later"),
            )
        },
        openapi_extra={"requestBody": request_body_schema(observations.max_records)},
    )
    async def post_observations(
        request: Request,
        mode: Annotated[
            Mode,
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
        producer = observations.authenticate(authorization)
        if isinstance(producer, Answer):  # refused before the body is read
            return respond(producer)
        submission = Submission(
            producer=producer,
            body=await read_body(request, observations.max_body_bytes),
            content_type=request.headers.get("content-type", "").split(";")[0].strip().lower(),
            mode=mode,
            idempotency_key=idempotency_key,
        )
        return respond(await asyncio.to_thread(observations.submit, submission))

    @app.get(
        "/observations/{batch_id}",
        response_model=BatchStatus,
        responses={
            401: {"model": Refusal, "description": "Missing or unknown bearer token"},
            404: {"model": Refusal, "description": "No batch of this producer has this id"},
            429: {"model": Refusal, "description": "Over this producer's rate limit"},
        },
    )
    async def get_batch(
        batch_id: Annotated[str, Path(description="A `batch_ids` item of a 202.")],
        authorization: Annotated[str | None, Header()] = None,
    ) -> Any:
        """What became of a batch: how many of its records are in the results,
        dead-lettered or on their way, and each rejected line with its reason.
        Only the producer who pushed it can read it."""
        producer = observations.authenticate(authorization)
        if isinstance(producer, Answer):
            return respond(producer)
        return respond(await asyncio.to_thread(observations.status, producer, batch_id))

    return app
