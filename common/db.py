"""The Postgres tables, as SQLAlchemy sees them: the aggregator writes, the API reads.

The migrations (``common/migrations``) create them; a test checks that both agree.

Domain words stay French as in the source data (indicateur, annee, valeur,
sous_champ); values are NUMERIC so running sums stay exact under corrections.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import psycopg
from psycopg import sql
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, BIT, JSONB

from common import referential
from schemas.catalogue import Catalogue

log = logging.getLogger(__name__)
metadata = MetaData()

communes = Table(
    "communes",
    metadata,
    Column("code", String(5), primary_key=True),
    Column("nom", Text, nullable=False),
    Column("departement", String(3), nullable=False, index=True),
    Column("region", String(3), nullable=False, index=True),
    Column("epci", String(9), index=True),
    Column("population", Integer),
)

territories = Table(
    "territories",
    metadata,
    Column("niveau", String(12), primary_key=True),
    Column("code", String(9), primary_key=True),
    Column("nom", Text, nullable=False),
    Column("communes_total", Integer, nullable=False),
)

former_codes = Table(
    "former_codes",
    metadata,
    Column("ancien", String(5), primary_key=True),
    Column("actuel", String(5), nullable=False),
)

referential_meta = Table(
    "referential_meta",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Text, nullable=False),
    Column("loaded_at", DateTime(timezone=True), server_default=func.now()),
)

observations = Table(
    "observations",
    metadata,
    Column("indicateur", Text, primary_key=True),
    Column("sous_champ", Text, primary_key=True),
    Column("annee", Integer, primary_key=True),
    Column("commune_source", String(5), primary_key=True),
    Column("commune", String(5), nullable=False),
    Column("valeur", Numeric),
    Column("marqueur", Text),
    Column("unite", Text),
    Column("libelle_indicateur", Text),
    Column("libelle_sous_champ", Text),
    Column("version", BigInteger, nullable=False),
    Column("version_explicite", Boolean, nullable=False, server_default=text("false")),
    Column("recu", BigInteger, nullable=False, server_default="0"),
    Column("record_id", Text, nullable=False),
    Column("pii", JSONB),
    Column("pii_key_id", Text),
    Column("producteur", Text),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

aggregates = Table(
    "aggregates",
    metadata,
    Column("indicateur", Text, primary_key=True),
    Column("sous_champ", Text, primary_key=True),
    Column("annee", Integer, primary_key=True),
    Column("niveau", String(12), primary_key=True),
    Column("code", String(9), primary_key=True),
    Column("valeur", Numeric, nullable=False),
    # Values present below this aggregate: source observations at commune
    # level, reporting communes above it.
    Column("nb_valeurs", Integer, nullable=False),
    Column("unite", Text),
    # Pair sums (ratio, moyenne_ponderee): over communes where both are present.
    Column("numerateur", Numeric, nullable=False, server_default="0"),
    Column("denominateur", Numeric, nullable=False, server_default="0"),
    Column("revision", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    # Its place in the change feed, taken when its change commits (0009): the
    # outbox relay publishes the rows numbered after its cursor. Read through
    # aggregate_change_log (0010): unindexed here, so that a change is a
    # heap-only update, with room for it on the page (fillfactor).
    Column("change_seq", BigInteger),
    # The number the last change replaced, whose log entry it deleted (logged).
    Column("previous_seq", BigInteger),
    Index("aggregates_by_territory", "niveau", "code"),
    postgresql_with={"fillfactor": 70},
)

# One entry for each numbered aggregate, by number: how the relay and the
# change feed find the rows changed after a cursor (migration 0010).
aggregate_change_log = Table(
    "aggregate_change_log",
    metadata,
    Column("change_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("indicateur", Text, nullable=False),
    Column("sous_champ", Text, nullable=False),
    Column("annee", Integer, nullable=False),
    Column("niveau", String(12), nullable=False),
    Column("code", String(9), nullable=False),
)

# How far each relay has published the change feed (migration 0009).
outbox_cursor = Table(
    "outbox_cursor",
    metadata,
    Column("relay", Text, primary_key=True),
    Column("published_seq", BigInteger, nullable=False),
)

# A transaction that changes aggregates numbers its rows (NEXT_CHANGE) under
# this lock, held to its commit, so that change numbers become visible in the
# order they were taken: a reader that saw N has seen every number below it.
# Writers take it after their other locks and before they touch an aggregates
# row (the rebuild, before locking the table); readers and the relay never
# take it. So its holder never waits for another writer, and it adds no
# deadlock.
NUMBERING_LOCK = "SELECT pg_advisory_xact_lock(7277413)"
# Aggregators starting together each replace the catalogue: one at a time, or
# the second's inserts collide with the first's rows.
CATALOGUE_LOCK = "SELECT pg_advisory_xact_lock(7277414)"
NEXT_CHANGE = "nextval('aggregate_changes')"
AGGREGATE_KEY_COLUMNS = ("indicateur", "sous_champ", "annee", "niveau", "code")
AGGREGATE_KEY = ", ".join(AGGREGATE_KEY_COLUMNS)
# How an update numbers the row it changes, for ``logged``: the replaced
# number is kept so that its log entry can go.
RENUMBER = f"change_seq = {NEXT_CHANGE}, previous_seq = a.change_seq"


def key_of(alias: str) -> str:
    """AGGREGATE_KEY's columns of the table named ``alias``."""
    return ", ".join(f"{alias}.{column}" for column in AGGREGATE_KEY_COLUMNS)


def same_change(row: str, entry: str) -> str:
    """SQL: the aggregate ``row`` holds the change of log ``entry`` (aliases)."""
    return f"({key_of(row)}) = ({key_of(entry)}) AND {row}.change_seq = {entry}.change_seq"


def logged(statement: str, *, select: str | None = None) -> str:
    """``statement``, which numbers the aggregates it inserts or updates
    (``change_seq = NEXT_CHANGE``, ``previous_seq`` = the number replaced)
    and names their table ``a``, with its changes written to
    ``aggregate_change_log`` and the entries of the numbers they replace
    deleted. Its row count is the rows it changed.

    ``select``: a query over ``changed`` (the rows as the statement left
    them) whose rows the whole statement returns instead: how the aggregator
    reads back what it wrote (services/aggregator/changes.py)."""
    if "UPDATE" in statement and "previous_seq = a.change_seq" not in statement:
        # The replaced entry would stay in the log for ever.
        raise ValueError("an update logged must keep the number it replaces")
    entries = f"""INSERT INTO aggregate_change_log (change_seq, {AGGREGATE_KEY})
SELECT change_seq, {AGGREGATE_KEY} FROM changed"""
    head = f"""
WITH changed AS (
{statement}
RETURNING a.*
), superseded AS (
    -- An array, probed through the primary key: as a join, Postgres scanned
    -- the whole log for every batch.
    DELETE FROM aggregate_change_log
    WHERE change_seq = ANY (ARRAY(SELECT previous_seq FROM changed WHERE previous_seq IS NOT NULL))
)"""
    if select is None:
        return f"{head}\n{entries}\n"
    # A data-modifying WITH runs to completion whether or not it is read.
    return f"{head}, entries AS (\n{entries}\n)\n{select}"


indicators = Table(
    "indicators",
    metadata,
    Column("id", Text, primary_key=True),
    Column("libelle", Text, nullable=False),
    Column("unite", Text),
    Column("description", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("min", Numeric),
    Column("max", Numeric),
    Column("agregation", Text, nullable=False),
    Column("numerateur", Text),
    Column("denominateur", Text),
    Column("facteur", Numeric, nullable=False),
    Column("poids", Text),
    Column("sens", Text),
    Column("sous_champs", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)

# National objectives from the catalogue (migration 0008).
objectives = Table(
    "objectives",
    metadata,
    Column("indicateur", Text, primary_key=True),
    Column("sous_champ", Text, primary_key=True),
    Column("annee", Integer, primary_key=True),
    Column("valeur", Numeric, nullable=False),
    Column("echelle", Text, nullable=False),
    Column("libelle", Text, nullable=False),
    Column("source", Text, nullable=False),
)

ingest_requests = Table(
    "ingest_requests",
    metadata,
    Column("producer", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("body_sha256", Text, nullable=False),
    Column("status", Integer),
    Column("response", JSONB),
    Column("claimed_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Index("ingest_requests_claimed_at", "claimed_at"),  # to forget expired keys
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("record_id", Text, primary_key=True),
    Column("batch_id", Text, index=False),
    Column("position", Integer),
    Column("stage", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("payload", JSONB),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("dead_letters_by_batch", "batch_id"),
)

# What became of each batch pushed over HTTP (migration 0005): the ingestor's
# record of it, and the aggregator's bit per record in the results.
ingest_batches = Table(
    "ingest_batches",
    metadata,
    Column("batch_id", Text, primary_key=True),
    Column("producer", Text, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("lines", ARRAY(Integer)),
    Column("refused", JSONB, nullable=False, server_default=text("'[]'")),
    Column("received_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Index("ingest_batches_received_at", "received_at"),
)

batch_progress = Table(
    "batch_progress",
    metadata,
    Column("batch_id", Text, primary_key=True),
    Column("clean", BIT(varying=True), nullable=False),
)

# The view of what readers see (each aggregate with its territory and its
# value by its indicator's rule), described for SQLAlchemy queries; the
# migrations create it, hence its own MetaData.
aggregate_values = Table(
    "aggregate_values",
    MetaData(),
    *(
        Column(name, Text)
        for name in ("indicateur", "sous_champ", "niveau", "code", "nom", "agregation", "unite")
    ),
    Column("annee", Integer),
    Column("valeur", Numeric),
    Column("communes_renseignees", Integer),
    Column("communes_total", Integer),
    Column("revision", BigInteger),
    Column("updated_at", DateTime(timezone=True)),
    Column("change_seq", BigInteger),
)


def sqlalchemy_url(database_url: str) -> str:
    """``postgresql://…`` (libpq form, what users configure) → SQLAlchemy + psycopg 3."""
    scheme, sep, rest = database_url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return database_url if sep else f"postgresql+psycopg://{database_url}"


def with_database(url: str, name: str) -> str:
    """The same server, another database (libpq URL, socket or TCP)."""
    head, _, tail = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{tail}" if tail else "")


def create_database(server_url: str, name: str) -> str:
    """A new, empty database on the server of ``server_url``: its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(server_url, name)


def array_literal(values: Sequence[str] | Sequence[int]) -> str:
    """The Postgres array literal of ``values`` (all text or all integers),
    for a ``%s::text[]`` or ``%s::int[]`` parameter: what psycopg sends for a
    list, built faster.

    psycopg dumps a list in Python, element by element: a tenth of the
    aggregator's time in a bulk load, where each batch looks up thousands of
    keys (docs/measurements.md). Here a column is one join: integers as they
    print, text always quoted with its backslashes and double quotes escaped
    (``array_in`` reads any other character inside quotes as it is; a NUL
    never gets this far, the bounds refuse it)."""
    if values and isinstance(values[0], int):
        return "{" + ",".join(map(str, values)) + "}"
    texts = cast(Sequence[str], values)
    if not texts:
        return "{}"
    every = "".join(texts)
    if "\\" not in every and '"' not in every:  # the common case: nothing to escape
        return '{"' + '","'.join(texts) + '"}'
    quoted = ['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in texts]
    return "{" + ",".join(quoted) + "}"


C = TypeVar("C", bound=psycopg.Connection[Any])


def usable(conn: C | None, connect: Callable[[], C]) -> C:
    """A long-lived connection: ``conn`` while it works, else a new one (after
    a database restart, the next batch reconnects)."""
    if conn is None or conn.closed or conn.broken:
        return connect()
    return conn


def make_engine(database_url: str, *, pre_ping: bool = True, **kwargs: Any) -> Engine:
    return create_engine(sqlalchemy_url(database_url), pool_pre_ping=pre_ping, **kwargs)


def _territory_rows(ref: referential.Referential) -> list[dict[str, Any]]:
    members: dict[str, Counter[str]] = {
        "epci": Counter(),
        "departement": Counter(),
        "region": Counter(),
    }
    for c in ref.communes.values():
        if c.epci:
            members["epci"][c.epci] += 1
        members["departement"][c.departement] += 1
        members["region"][c.region] += 1
    names = {"epci": ref.epci, "departement": ref.departements, "region": ref.regions}
    rows = [
        {"niveau": "commune", "code": c.code, "nom": c.nom, "communes_total": 1}
        for c in ref.communes.values()
    ]
    for niveau, counts in members.items():
        rows += [
            {
                "niveau": niveau,
                "code": code,
                "nom": names[niveau].get(code, code),
                "communes_total": n,
            }
            for code, n in counts.items()
        ]
    rows.append(
        {
            "niveau": "france",
            "code": referential.FRANCE,
            "nom": "France",
            "communes_total": len(ref.communes),
        }
    )
    return rows


# Readers that cache (the API) learn of every change to aggregates,
# indicators and territories on this channel (a statement trigger, see
# migrations/versions/0001_baseline.py), when the writing transaction commits.
CHANGES_CHANNEL = "itte_changes"


def load_catalogue(engine: Engine, catalogue: Catalogue) -> None:
    """Replace the indicators and objectives by ``catalogue`` (the aggregator's, at each start)."""
    with engine.begin() as conn:
        conn.execute(text(CATALOGUE_LOCK))
        conn.execute(indicators.delete())
        conn.execute(objectives.delete())
        conn.execute(insert(indicators), [i.model_dump() for i in catalogue.indicateurs.values()])
        if catalogue.objectifs:
            conn.execute(insert(objectives), [o.model_dump() for o in catalogue.objectifs])


def load_referential(conn: Connection, ref: referential.Referential) -> None:
    """Communes, territories and former codes, reloaded when the version changes."""
    if conn.execute(select(referential_meta.c.version)).scalar() == ref.version:
        return
    for table in (communes, territories, former_codes, referential_meta):
        conn.execute(table.delete())
    conn.execute(
        insert(communes),
        [
            {
                "code": c.code,
                "nom": c.nom,
                "departement": c.departement,
                "region": c.region,
                "epci": c.epci,
                "population": c.population,
            }
            for c in ref.communes.values()
        ],
    )
    conn.execute(insert(territories), _territory_rows(ref))
    conn.execute(
        insert(former_codes), [{"ancien": a, "actuel": b} for a, b in ref.former_codes.items()]
    )
    conn.execute(insert(referential_meta), {"id": 1, "version": ref.version})
    log.info("loaded referential %s (%d communes)", ref.version, len(ref.communes))
