"""``GET /indicateurs`` as JSON, answered without FastAPI's per-request
machinery when its query string is plain.

FastAPI resolves seven dependencies and validates eleven query parameters
for each request: about a third of the API's CPU for an uncached page
(docs/measurements.md, "The API's uncached reads"). This route is tried
first. It reads a query string whose every parameter is known, given once
and surely valid (a stricter reading than FastAPI's), and answers exactly
as the FastAPI route would: same rows, bytes and headers. Anything else (a
CSV, a doubtful or repeated value, an unknown parameter, another method)
goes to the FastAPI route itself, which answers or explains the error: the
two readings never disagree on what they both accept
(tests/integration/test_api_lean.py holds them equal over any query).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from schemas import limits
from schemas.aggregates import NIVEAUX
from services.api.deps import MAX_LIMIT, MAX_OFFSET
from services.api.reads import indicateurs as reads
from services.api.routes import indicateurs

PATH = indicateurs.PATH


def _matching(pattern: str, fold: Callable[[str], str] = str) -> Callable[[str], Any]:
    compiled = re.compile(pattern)
    return lambda text: fold(text) if compiled.fullmatch(text) else None


def _key_text(text: str) -> str | None:
    return text if len(text) <= limits.MAX_KEY_CHARS and "\x00" not in text else None


def _bounded(low: int, high: int, digits: int) -> Callable[[str], int | None]:
    shape = re.compile(rf"[0-9]{{1,{digits}}}")

    def read(text: str) -> int | None:
        number = int(text) if shape.fullmatch(text) else None
        return number if number is not None and low <= number <= high else None

    return read


# Each parameter: what it becomes when surely valid, else None. The patterns
# are deps.py's; text that FastAPI would also accept but reads otherwise
# ("+2024", " 33", "True") is left to FastAPI.
READERS: dict[str, Callable[[str], Any]] = {
    "commune": _matching(r"\d{5}|2[ABab]\d{3}", str.upper),
    "epci": _matching(r"\d{9}"),
    "departement": _matching(r"\d{2,3}|2[ABab]", str.upper),
    "region": _matching(r"\d{2,3}"),
    "niveau": lambda text: text if text in NIVEAUX else None,
    "indicateur": _key_text,
    "sous_champ": _key_text,
    "annee": _bounded(1900, 2100, 4),
    "annee_min": _bounded(1900, 2100, 4),
    "annee_max": _bounded(1900, 2100, 4),
    "limit": _bounded(1, MAX_LIMIT, len(str(MAX_LIMIT))),
    "offset": _bounded(0, MAX_OFFSET, len(str(MAX_OFFSET))),
    "exact": {"true": True, "false": False}.get,
    "format": {"json": "json"}.get,
}


@dataclass(frozen=True)
class Plain:
    filters: reads.Filters
    exact: bool
    params: dict[str, str]  # as given, for the next page's link


def plain(query_string: str) -> Plain | None:
    """The request's filters, when every parameter is surely valid; None
    sends it to the FastAPI route."""
    read: dict[str, Any] = {}
    given: dict[str, str] = {}
    for name, text in parse_qsl(query_string, keep_blank_values=True):
        reader = READERS.get(name)
        if reader is None or name in given or not text:
            return None
        value = reader(text)
        if value is None:
            return None
        read[name], given[name] = value, text
    exact = read.pop("exact", False)
    read.pop("format", None)
    return Plain(reads.Filters(**read), exact, given)


class LeanIndicateurs:
    """The ASGI app of the lean route; ``full``: the FastAPI route's app."""

    def __init__(self, full: ASGIApp) -> None:
        self.full = full

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        asked = plain(scope["query_string"].decode("latin-1")) if scope["method"] == "GET" else None
        if asked is None:
            await self.full(scope, receive, send)
            return
        state = scope["app"].state
        answer = await indicateurs.json_page(
            state.read_pool, state.statements, asked.filters, asked.exact, asked.params
        )
        await answer(scope, receive, send)
