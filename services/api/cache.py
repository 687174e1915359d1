"""Responses of the read endpoints, kept until the data they show changes.

The aggregates change only when a writer commits, and every such commit
notifies ``common.db.CHANGES_CHANNEL``: the aggregator names each indicator
and year it wrote (``["pop", 2024]``); any other writer (a statement
trigger) names the table, and then anything may have changed. A listener
thread bumps generation numbers on each notification: one for everything,
one per indicator and one per indicator and year. A response is kept with
the numbers of what it shows (read from its query string: ``indicateur``,
``indicateurs``, ``annee``) and served from memory only while they have not
moved: a commit on one indicator leaves the others' answers in memory
(issue #27). While the listener is not connected (start-up, database
restart) nothing is served from memory.

Why a response computed during a commit is never served stale: its numbers
are read *before* its query runs. If the commit's notification arrives after
that, a number moves on and the entry is dead; if it arrived before, the
query already saw the committed data.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import psycopg
from cachetools import LRUCache
from prometheus_client import Counter

from common.db import CHANGES_CHANNEL

log = logging.getLogger(__name__)
CACHE = Counter("itte_api_cache_lookups_total", "Response cache lookups", ["result"])
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


Stamp = tuple[int, ...]
# What a response shows: None, anything; else (indicateur, annee or None).
Shows = frozenset[tuple[str, int | None]] | None
CATALOGUE = frozenset[tuple[str, int | None]]()  # no aggregate: the catalogue


@dataclass(frozen=True)
class Entry:
    stamp: Stamp
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class ResponseCache:
    """Only the listener thread moves the numbers; requests read them."""

    def __init__(self, max_bytes: int) -> None:
        self._entries: LRUCache[str, Entry] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda e: len(e.body) + 512
        )
        self.generation = 0  # moves on every change
        self.everything = 0  # moves when anything may have changed
        self._indicators: dict[str, int] = {}
        self._years: dict[tuple[str, int], int] = {}
        self.live = False  # True while the change listener is connected

    def current(self) -> int | None:
        """A number that moves when the data may have; None while not listening."""
        return self.generation if self.live else None

    def invalidate(self) -> None:
        """Anything may have changed."""
        self.everything += 1
        self.generation += 1

    def changed(self, indicateur: str, annee: int) -> None:
        """The aggregates of one indicator and year changed."""
        self._years[indicateur, annee] = self._years.get((indicateur, annee), 0) + 1
        self._indicators[indicateur] = self._indicators.get(indicateur, 0) + 1
        self.generation += 1

    def stamp(self, shows: Shows) -> Stamp:
        """The numbers a response showing ``shows`` is kept under."""
        if shows is None:
            return (self.everything, self.generation)
        return (
            self.everything,
            *(
                self._indicators.get(i, 0) if a is None else self._years.get((i, a), 0)
                for i, a in sorted(shows, key=repr)
            ),
        )

    def get(self, key: str, shows: Shows) -> Entry | None:
        entry = self._entries.get(key) if self.live else None
        return entry if entry is not None and entry.stamp == self.stamp(shows) else None

    def put(self, key: str, shows: Shows, entry: Entry) -> None:
        if self.live and entry.stamp == self.stamp(shows):
            with contextlib.suppress(ValueError):  # larger than the whole cache
                self._entries[key] = entry


class ChangeListener(threading.Thread):
    """LISTENs on the changes channel; reconnects (cache off meanwhile)."""

    def __init__(self, database_url: str, cache: ResponseCache, check_every: float = 5.0) -> None:
        super().__init__(name="itte-change-listener", daemon=True)
        self._database_url = database_url
        self._cache = cache
        self._check_every = check_every
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as exc:
                log.warning("change listener: %s; response cache off until reconnected", exc)
            self._cache.live = False
            self._cache.invalidate()
            self._stop.wait(1.0)

    def _listen(self) -> None:
        # Keepalives: a silently dropped connection is noticed within seconds.
        with psycopg.connect(
            self._database_url,
            autocommit=True,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=2,
        ) as conn:
            conn.execute(f"LISTEN {CHANGES_CHANNEL}")
            self._cache.invalidate()  # anything may have changed while not listening
            self._cache.live = True
            while not self._stop.is_set():
                for notice in conn.notifies(timeout=self._check_every):
                    self._heard(notice.payload)
                conn.execute("SELECT 1")  # raises if the connection is gone

    def _heard(self, payload: str) -> None:
        """``["indicateur", annee]`` from the aggregator; else a table's name."""
        if payload.startswith("["):
            with contextlib.suppress(ValueError, TypeError):
                indicateur, annee = json.loads(payload)
                if isinstance(indicateur, str) and isinstance(annee, int):
                    self._cache.changed(indicateur, annee)
                    return
        self._cache.invalidate()


class CacheMiddleware:
    """Serves GET responses of ``paths`` from the cache; ``Cache-Control:
    no-cache`` from the client goes to the database."""

    def __init__(self, app: ASGIApp, cache: ResponseCache, paths: frozenset[str]) -> None:
        self.app = app
        self.cache = cache
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        query = scope["query_string"].decode("latin-1")
        key = f"{scope['path']}?{query}"
        shows = what_it_shows(scope["path"], query)
        if (b"cache-control", b"no-cache") not in scope["headers"]:
            entry = self.cache.get(key, shows)
            if entry is not None:
                CACHE.labels("hit").inc()
                await send(
                    {
                        "type": "http.response.start",
                        "status": entry.status,
                        "headers": entry.headers,
                    }
                )
                await send({"type": "http.response.body", "body": entry.body})
                return
        CACHE.labels("miss").inc()
        stamp, chunks = self.cache.stamp(shows), []
        start: Message = {}

        async def keep(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body" and is_json(start):
                chunks.append(message.get("body", b""))  # not a CSV export: unbounded
            await send(message)

        await self.app(scope, receive, keep)
        if start.get("status") == 200 and is_json(start):
            headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", [])]
            self.cache.put(key, shows, Entry(stamp, 200, headers, b"".join(chunks)))


def what_it_shows(path: str, query: str) -> Shows:
    """The indicators (and year) a cached answer shows, from its query string:
    ``indicateur`` (``/indicateurs``), ``indicateurs`` (``/typologies``, each
    ``id`` or ``id:sous_champ``) and ``annee``; None when it may show any."""
    if path == "/indicateurs/catalogue":
        return CATALOGUE
    params = parse_qs(query)
    names = params.get("indicateur", []) + [
        part.partition(":")[0] for text in params.get("indicateurs", []) for part in text.split(",")
    ]
    years = params.get("annee", [])
    if not names or len(years) > 1 or any(len(v) > 1 for v in params.values()):
        return None  # repeated parameters: let the route decide what they mean
    year = int(years[0]) if years and years[0].isdigit() and len(years[0]) <= 4 else None
    if years and year is None:
        return None
    return frozenset((name, year) for name in names)


def is_json(start: Message) -> bool:
    return any(
        k.lower() == b"content-type" and v.startswith(b"application/json")
        for k, v in start.get("headers", [])
    )


class NotModified:
    """``If-None-Match`` with the answer's current ``ETag``: 304 and no body
    (for answers computed now and for those from the cache alike)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Every GET passes here: look for the one header, build nothing.
        wanted = next((v for k, v in scope.get("headers", []) if k == b"if-none-match"), None)
        if scope["type"] != "http" or scope["method"] != "GET" or wanted is None:
            await self.app(scope, receive, send)
            return
        unchanged = False

        async def answer(message: Message) -> None:
            nonlocal unchanged
            if message["type"] == "http.response.start":
                tag = dict(message.get("headers", [])).get(b"etag")
                tags = {t.strip().removeprefix(b"W/") for t in wanted.split(b",")}
                unchanged = (
                    message["status"] == 200 and tag is not None and (tag in tags or b"*" in tags)
                )
                if unchanged:
                    headers = [(b"etag", tag)]
                    await send({"type": "http.response.start", "status": 304, "headers": headers})
                    return
            elif unchanged:
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b""})
                return
            await send(message)

        await self.app(scope, receive, answer)
