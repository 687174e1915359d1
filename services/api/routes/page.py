"""The web page for a collectivité's agent (``/``): one HTML file, its script
and style, and a small charting library vendored with its licence (uPlot,
static/vendor/uplot). Nothing to build: the files are served as they are,
from ``/static`` (mounted by ``create_app``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parents[1] / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")
