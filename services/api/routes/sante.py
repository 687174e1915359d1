"""Probes: ``/livez`` (the process answers) and ``/readyz`` (Postgres answers)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.api.deps import EngineDep
from services.api.reads.sante import DatabaseAway, referential_version

router = APIRouter()


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process runs and answers."""
    return {"status": "ok", "service": "api"}


@router.get("/readyz")
@router.get("/health")
def readyz(engine: EngineDep) -> JSONResponse:
    """Ready: Postgres answers (503 with the reason otherwise)."""
    try:
        version = referential_version(engine)
    except DatabaseAway as exc:
        return JSONResponse(
            {"status": "failing", "service": "api", "reason": str(exc)}, status_code=503
        )
    return JSONResponse({"status": "ok", "service": "api", "referential": version})
