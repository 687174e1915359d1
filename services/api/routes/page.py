"""The web page for a collectivité's agent (``/``): one HTML file, its script
and style, and a small charting library vendored with its licence (uPlot,
static/vendor/uplot). Nothing to build: the files are served as they are,
from ``/static`` (mounted by ``create_app``).

A territory has an address, ``/?niveau=epci&code=200066793`` (issue #32):
the script opens it, and the page comes with the territory's name in its
title and in the tags a link preview reads (Open Graph)."""

from __future__ import annotations

import html
import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from schemas.aggregates import NIVEAUX
from services.api.deps import EngineDep
from services.api.models import Territoire
from services.api.reads import territoires

STATIC = Path(__file__).resolve().parents[1] / "static"
PAGE = (STATIC / "index.html").read_text(encoding="utf-8")
TITLE = "<title>Indicateurs territoriaux de la transition écologique</title>"
CODE = re.compile(r"[0-9A-Za-z]{1,9}")
LEVELS = {
    "commune": "commune",
    "epci": "EPCI",
    "departement": "département",
    "region": "région",
    "france": "France",
}

router = APIRouter()


@router.get("/", include_in_schema=False)
async def page(
    engine: EngineDep, niveau: str | None = None, code: str | None = None
) -> HTMLResponse:
    """The page; with a territory's address, titled and described for it
    (404 for an address that names none)."""
    if niveau is None or code is None or niveau not in NIVEAUX or not CODE.fullmatch(code):
        return HTMLResponse(PAGE)
    found = await run_in_threadpool(territoires.find, engine, niveau, code)
    if found is None:
        return HTMLResponse(PAGE, status_code=404)
    return HTMLResponse(described(found))


def described(territory: Territoire) -> str:
    """The page with the territory in its title and its preview tags."""
    name = f"{territory.nom} ({LEVELS[territory.niveau]})"
    title = f"{name} — Indicateurs territoriaux de la transition écologique"
    summary = (
        f"Les indicateurs de la transition écologique de {name}, comparés à ceux du "
        "territoire qui l’englobe, mis à jour en direct."
    )
    tags = "\n  ".join(
        [
            f"<title>{html.escape(title)}</title>",
            f'<meta name="description" content="{html.escape(summary)}">',
            f'<meta property="og:title" content="{html.escape(title)}">',
            f'<meta property="og:description" content="{html.escape(summary)}">',
            '<meta property="og:type" content="website">',
        ]
    )
    return PAGE.replace(TITLE, tags, 1)
