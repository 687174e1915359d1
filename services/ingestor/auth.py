"""Producers: who may push, with which tokens, and what each may write.

Tokens are random (``itte token NAME`` makes one) and kept only as SHA-256
hashes: a plain SHA-256 of a random token cannot be reversed by a
dictionary, so the configuration never holds a usable secret. A producer
may hold several tokens at once (a rotation: the new one is added, the
producer switches, the old one is removed) and may be limited to some
indicators and territories (issue #30: nobody squats a value).

The same table comes from ``ITTE_PRODUCER_TOKENS`` (JSON, read at start) or
from the file ``ITTE_PRODUCERS_FILE`` (TOML, or JSON by its suffix), read
again when it changes, so that tokens are added, rotated and revoked
without a restart (docs/producers.md, "Tokens and scopes")::

    [ademe]
    jetons = ["sha256:…", "sha256:…"]        # two during a rotation
    indicateurs = ["conso_*", "emissions_ges"]  # absent: every indicator
    territoires = ["departement:33", "region:75"]  # absent: all of France
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from common import metrics
from common.referential import (
    Referential,
    Unplaced,
    ancestors,
    covering,
    level_of,
    levels,
    load,
    locate,
    place,
)
from schemas.raw import indicator_name

PREFIX = "sha256:"
LEVELS = ("commune", "epci", "departement", "region")
log = logging.getLogger(__name__)

TokenHash = Annotated[str, StringConstraints(pattern=rf"^{PREFIX}[0-9a-f]{{64}}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]


def hash_token(token: str) -> str:
    return PREFIX + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "itte_" + secrets.token_urlsafe(32)


class Entry(BaseModel):
    """One producer as configured (French keys, like the rest of the data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jetons: list[TokenHash] = Field(min_length=1)
    indicateurs: list[Name] | None = Field(None, min_length=1)
    territoires: list[Name] | None = Field(None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """A bare hash, or a list of hashes: a producer with no limits."""
        if isinstance(value, str):
            return {"jetons": [value]}
        if isinstance(value, list):
            return {"jetons": value}
        return value


TABLE = TypeAdapter(dict[Name, Entry])


class Places:
    """Where a commune code lies, on the edition of the map ``edition``
    gives (the shipped one, or the newest loaded since: the ingestor follows
    the editions topic as the cleaner does); used only when a producer is
    limited to territories."""

    def __init__(self, edition: Callable[[], Referential] = load) -> None:
        self._edition = edition

    @property
    def ref(self) -> Referential:
        return self._edition()

    @property
    def above(self) -> dict[str, tuple[tuple[str, str], ...]]:
        return ancestors(self.ref)  # made once per edition

    def exists(self, level: str, code: str) -> bool:
        ref = self.ref
        return code in (ref.communes if level == "commune" else levels(ref)[level])

    def of(self, code: str) -> set[tuple[str, str]]:
        """The territories a commune code is part of; none when it names no commune."""
        try:
            sent, current = locate(code, self.ref)
        except Unplaced:
            return set()
        return {("commune", sent), ("commune", current), *self.above.get(current, ())}

    def holding(self, record: Mapping[str, Any]) -> set[tuple[str, str]]:
        """The territories that hold the record's territory (itself included),
        placed as the cleaner places it (``common.referential.place``); none
        when it names no one territory."""

        def text(name: str) -> str | None:
            value = record.get(name)
            return None if value is None else str(value)

        try:
            niveau, _, code = place(
                self.ref,
                commune=text("commune"),
                code=text("code"),
                niveau=text("niveau"),
                label=text("libelle_territoire"),
                departement=text("departement"),
            )
        except Unplaced:
            return set()
        if niveau == "commune":
            return self.of(code)
        return set(covering(self.ref).get((niveau, code), {(niveau, code)}))


@dataclass(frozen=True)
class Scope:
    """What a producer may write: indicators matching one of ``indicators``
    (shell patterns, ``conso_*``) in communes part of one of
    ``territories``; empty: no limit."""

    indicators: tuple[str, ...] = ()
    territories: frozenset[tuple[str, str]] = frozenset()

    def refusal(self, record: Mapping[str, Any], places: Places | None) -> str | None:
        """Why this (schema-valid) record is not this producer's to write, if it is not."""
        if self.indicators:
            name = indicator_name(record.get("indicateur"))  # as the cleaner stores it
            if not any(fnmatchcase(name, pattern) for pattern in self.indicators):
                return f"indicator {name!r} is not among this producer's"
        holding = places.holding(record) if self.territories and places is not None else None
        if holding is not None and not self.territories & holding:
            return f"{named(record)} is outside this producer's territories"
        return None


def named(record: Mapping[str, Any]) -> str:
    """A record's territory as its producer wrote it: ``commune '75056'``."""
    try:
        level = level_of(None if record.get("niveau") is None else str(record["niveau"]))
    except Unplaced:
        level = "territory"
    where = next(
        (record[k] for k in ("code", "commune", "libelle_territoire") if record.get(k) is not None),
        None,
    )
    return f"{level} {str(where)!r}"


@dataclass(frozen=True)
class Producer:
    tokens: tuple[str, ...]  # hashes
    scope: Scope = Scope()


@dataclass(frozen=True)
class Producers:
    """Producer name → tokens and scope. ``required`` False (local runs with
    nothing configured): authentication is off, anyone may write anything."""

    producers: dict[str, Producer]
    required: bool = True
    places: Places | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, config: str | None, edition: Callable[[], Referential] = load) -> Producers:
        """The JSON of ``ITTE_PRODUCER_TOKENS``; unset or empty: authentication off."""
        if not config:
            return cls({}, required=False)
        try:
            table = json.loads(config)
        except ValueError as exc:
            raise ValueError(f"ITTE_PRODUCER_TOKENS is not JSON: {exc}") from None
        return cls.of(table, where="ITTE_PRODUCER_TOKENS", edition=edition)

    @classmethod
    def of(cls, table: Any, *, where: str, edition: Callable[[], Referential] = load) -> Producers:
        """Checked whole: any mistake raises ValueError naming ``where`` and the
        entry, and nothing of the table is used."""
        try:
            entries = TABLE.validate_python(table)
        except ValidationError as exc:
            first = exc.errors()[0]
            at = ".".join(str(part) for part in first["loc"])
            raise ValueError(
                f'{where}: {at}: {first["msg"]} (expected {{"producer": "sha256:<64 hex>"}}, '
                "a list of such hashes, or a table with jetons, indicateurs, territoires)"
            ) from None
        producers = {name: _producer(name, entry, where) for name, entry in entries.items()}
        _one_owner_per_token(producers, where)
        limited = any(p.scope.territories for p in producers.values())
        places = Places(edition) if limited else None
        for name, p in producers.items():
            for level, code in p.scope.territories:
                if places is not None and not places.exists(level, code):
                    raise ValueError(f"{where}: {name}: no {level} {code} in the referential")
        return cls(producers, required=True, places=places)

    def current(self) -> Producers:
        """As the ingestor asks a :class:`ProducersFile`: a fixed table is its own."""
        return self

    def identify(self, authorization: str | None) -> str | None:
        """The producer a ``Bearer`` header belongs to, or None."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        presented = hash_token(token.strip())
        found = None
        for name, producer in self.producers.items():  # compare all: no timing hint
            for expected in producer.tokens:
                if hmac.compare_digest(presented, expected):
                    found = name
        return found

    def refusals(
        self, producer: str, records: Sequence[tuple[int, Mapping[str, Any]]]
    ) -> list[tuple[int, str]]:
        """The records (by line) that ``producer`` may not write, with why."""
        if not self.required:
            return []
        held = self.producers.get(producer)
        if held is None:  # its last token was revoked since it was let in
            return [(line, "this producer's tokens were revoked") for line, _ in records]
        if not (held.scope.indicators or held.scope.territories):
            return []
        refused = []
        for line, record in records:
            if (why := held.scope.refusal(record, self.places)) is not None:
                refused.append((line, why))
        return refused


def _producer(name: str, entry: Entry, where: str) -> Producer:
    territories = set()
    for text in entry.territoires or ():
        level, _, code = text.partition(":")
        if level not in LEVELS or not code:
            raise ValueError(
                f"{where}: {name}: territory {text!r} is not level:code "
                f"(levels: {', '.join(LEVELS)})"
            )
        territories.add((level, code.strip().upper()))
    return Producer(
        tuple(entry.jetons), Scope(tuple(entry.indicateurs or ()), frozenset(territories))
    )


def _one_owner_per_token(producers: Mapping[str, Producer], where: str) -> None:
    owners: dict[str, str] = {}
    for name, producer in producers.items():
        for token in producer.tokens:
            if owners.setdefault(token, name) != name:
                raise ValueError(f"{where}: one token is listed for {owners[token]} and {name}")


class ProducersFile:
    """The producers of a file, read again when it changes (checked at most
    every ``check_every`` seconds). A file that no longer reads keeps the
    last good table in force: the error goes to the log and to
    ``itte_producers_file_errors_total``. Unreadable at start: raises."""

    def __init__(
        self,
        path: Path,
        *,
        check_every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        edition: Callable[[], Referential] = load,
    ) -> None:
        self.path = path
        self.edition = edition
        self.check_every = check_every
        self.clock = clock
        self._lock = threading.Lock()
        self._seen = self._stamp()
        self._producers = self._read()
        self._checked = clock()

    def current(self) -> Producers:
        if self.clock() - self._checked < self.check_every:
            return self._producers
        with self._lock:
            if self.clock() - self._checked >= self.check_every:
                self._checked = self.clock()
                self._reload()
        return self._producers

    def _stamp(self) -> tuple[int, int, int]:
        stat = os.stat(self.path)  # follows a mounted secret's symlink
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def _read(self) -> Producers:
        text = self.path.read_text("utf-8")
        try:
            table = json.loads(text) if self.path.suffix == ".json" else tomllib.loads(text)
        except ValueError as exc:
            raise ValueError(f"{self.path}: {exc}") from None
        return Producers.of(table, where=str(self.path), edition=self.edition)

    def _reload(self) -> None:
        try:
            stamp = self._stamp()
            if stamp == self._seen:
                return
            self._seen = stamp  # a broken version is reported once, not every second
            self._producers = self._read()
        except (OSError, ValueError) as exc:
            metrics.PRODUCERS_FILE_ERRORS.labels("ingestor").inc()
            log.error("producers file not read, the previous table stays in force: %s", exc)
            return
        log.info("producers file read again: %d producers", len(self._producers.producers))
