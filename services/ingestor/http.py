"""HTTP entrypoint of the ingestor (FastAPI): each route reads the request,
calls the handler (``handlers.py`` ``PushHandler``, set once in
``app.state`` by :func:`create_app`) and writes its answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from common import http_metrics
from schemas.raw import RawObservation
from services.ingestor.admission import RUNNING, WAITING, Admission
from services.ingestor.handlers import NDJSON_TYPES, PushHandler, refuse
from services.ingestor.models import Accepted, Answer, Mode, Refusal, Submission
from services.ingestor.publisher import SERVICE
from services.ingestor.status import BatchStatus

router = APIRouter()


async def push_handler(request: Request) -> PushHandler:
    return request.app.state.handler


Handler = Annotated[PushHandler, Depends(push_handler)]
Authorization = Annotated[str | None, Header()]


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


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process runs and answers."""
    return {"status": "ok", "service": SERVICE}


@router.get("/readyz")
@router.get("/health")
async def readyz(handler: Handler) -> JSONResponse:
    """Ready: the broker answers (503 with the reason otherwise); whether
    Postgres answers is said too."""
    return respond(await asyncio.to_thread(handler.readiness))


@router.post(
    "/observations",
    status_code=202,
    response_model=Accepted,
    responses={
        status: {"model": Refusal, "description": description}
        for status, description in (
            (400, "Unreadable body"),
            (401, "Missing or unknown bearer token"),
            (403, "Records beyond this token's indicators or territories (each line named)"),
            (409, "A request with this Idempotency-Key is in progress"),
            (413, "Body or record count over the limit"),
            (422, "Invalid records (each line named), or no record; nothing published"),
            (429, "Over this producer's rate limit: nothing published, retry after"),
            (503, "Broker unavailable, or too many pushes in progress: retry later"),
        )
    },
)
async def post_observations(
    request: Request,
    handler: Handler,
    mode: Annotated[
        Mode,
        Query(
            description="atomic: any invalid record refuses the request; partial: valid "
            "records are accepted, invalid ones listed"
        ),
    ] = "atomic",
    authorization: Authorization = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    """One JSON object, a JSON array of objects, or NDJSON (one object per line,
    with `Content-Type: application/x-ndjson`). Answers once the broker has
    acknowledged the records, all in one Kafka message."""
    producer = handler.authenticate(authorization)
    if isinstance(producer, Answer):  # refused before the body is read
        return respond(producer)
    admission: Admission = request.app.state.admission
    async with admission.turn() as admitted:
        if not admitted:  # refused before the body is read
            return respond(busy())
        submission = Submission(
            producer=producer,
            body=await read_body(request, handler.max_body_bytes),
            content_type=request.headers.get("content-type", "").split(";")[0].strip().lower(),
            mode=mode,
            idempotency_key=idempotency_key,
        )
        return respond(await asyncio.to_thread(handler.submit, submission))


def busy() -> Answer:
    return refuse(
        503,
        "too many pushes in progress on this worker, nothing was read: retry later",
        "busy",
        headers={"Retry-After": "1"},
    )


@router.get(
    "/observations/{batch_id}",
    response_model=BatchStatus,
    responses={
        401: {"model": Refusal, "description": "Missing or unknown bearer token"},
        404: {"model": Refusal, "description": "No batch of this producer has this id"},
        429: {"model": Refusal, "description": "Over this producer's rate limit"},
    },
)
async def get_batch(
    handler: Handler,
    batch_id: Annotated[str, Path(description="A `batch_ids` item of a 202.")],
    authorization: Authorization = None,
) -> Any:
    """What became of a batch: how many of its records are in the results,
    dead-lettered or on their way, and each rejected line with its reason.
    Only the producer who pushed it can read it."""
    producer = handler.authenticate(authorization)
    if isinstance(producer, Answer):
        return respond(producer)
    return respond(await asyncio.to_thread(handler.status, producer, batch_id))


def create_app(
    handler: PushHandler,
    admission: Admission | None = None,
    on_shutdown: Callable[[], None] = lambda: None,
) -> FastAPI:
    """The handler and the admission of pushes (default: as the settings'
    defaults) in ``app.state``, the metrics, the routes; ``on_shutdown``
    once the server stops."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        on_shutdown()

    app = FastAPI(
        title="itte ingestor",
        version="0.1.0",
        description="Push commune-level indicator observations.",
        lifespan=lifespan,
    )
    app.state.handler = handler
    app.state.admission = admission or Admission(RUNNING, WAITING)
    http_metrics.instrument(app)
    app.add_exception_handler(RequestValidationError, invalid_parameters)
    app.include_router(router)
    app.openapi = lambda: described_body(app, handler.max_records)  # type: ignore[method-assign]
    return app


async def invalid_parameters(request: Request, exc: Exception) -> JSONResponse:
    """Bad query parameters or headers, answered like every other refusal."""
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return respond(refuse(422, f"invalid request: {problems}", "invalid_parameters"))


def described_body(app: FastAPI, max_records: int) -> dict[str, Any]:
    """The OpenAPI document, with what ``POST /observations`` reads: FastAPI
    cannot infer it (the route reads the raw body to accept three forms),
    and the record limit is a setting."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = FastAPI.openapi(app)  # kept by FastAPI in app.openapi_schema
    schema["paths"]["/observations"]["post"]["requestBody"] = request_body_schema(max_records)
    return schema


def request_body_schema(max_records: int) -> dict[str, Any]:
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
