"""Postgres schema shared by the aggregator (writer) and the API (reader).

Domain words stay French as in the source data (indicateur, annee, valeur,
sous_champ); values are NUMERIC so running sums stay exact under corrections.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
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
from sqlalchemy.dialects.postgresql import JSONB

from itte import referential
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
    Column("published_revision", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    # The outbox: changes committed but not yet on indicators.aggregates.
    # Commune rows are not published: they restate the observations.
    Index(
        "aggregates_unpublished",
        "indicateur",
        "sous_champ",
        "annee",
        "niveau",
        "code",
        postgresql_where=text("revision > published_revision AND niveau <> 'commune'"),
    ),
    Index("aggregates_by_territory", "niveau", "code"),
)

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
)

# What readers see: each aggregate with its territory and its value computed
# by its indicator's rule. The API and the outbox relay both read this view.
AGGREGATE_VALUES_VIEW = """
CREATE OR REPLACE VIEW aggregate_values AS
SELECT a.indicateur, a.sous_champ, a.annee, a.niveau, a.code, t.nom,
       coalesce(i.agregation, 'non_agregeable') AS agregation,
       CASE
           WHEN a.nb_valeurs = 0 THEN NULL
           WHEN i.agregation = 'ratio'
               THEN a.numerateur / NULLIF(a.denominateur, 0) * i.facteur
           WHEN i.agregation = 'moyenne_ponderee' AND a.niveau <> 'commune'
               THEN a.numerateur / NULLIF(a.denominateur, 0)
           ELSE a.valeur
       END AS valeur,
       coalesce(i.unite, a.unite) AS unite,
       CASE WHEN a.niveau = 'commune' THEN least(a.nb_valeurs, 1) ELSE a.nb_valeurs END
           AS communes_renseignees,
       t.communes_total, a.revision, a.published_revision, a.updated_at
FROM aggregates a
JOIN territories t ON (t.niveau, t.code) = (a.niveau, a.code)
LEFT JOIN indicators i ON i.id = a.indicateur
"""

# The view, described for SQLAlchemy queries (created by the DDL above, not by
# create_all, hence its own MetaData).
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
    Column("published_revision", BigInteger),
    Column("updated_at", DateTime(timezone=True)),
)

_SCHEMA_LOCK = 7_277_410  # advisory lock id: services may start together


def sqlalchemy_url(database_url: str) -> str:
    """``postgresql://…`` (libpq form, what users configure) → SQLAlchemy + psycopg 3."""
    scheme, sep, rest = database_url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return database_url if sep else f"postgresql+psycopg://{database_url}"


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


# Readers that cache (the API) learn of every change to what they serve: each
# statement that writes these tables notifies CHANGES_CHANNEL, delivered when
# its transaction commits (Postgres folds repeats within a transaction).
CHANGES_CHANNEL = "itte_changes"
SERVED_TABLES = ("aggregates", "indicators", "territories")
NOTIFY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION itte_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANGES_CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END $$
"""
NOTIFY_TRIGGERS = tuple(
    f"CREATE OR REPLACE TRIGGER itte_notify_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
    f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION itte_notify_change()"
    for table in SERVED_TABLES
)

# Columns added after the first release of a table (create_all adds no column).
MIGRATIONS = (
    "ALTER TABLE aggregates ADD COLUMN IF NOT EXISTS numerateur numeric NOT NULL DEFAULT 0",
    "ALTER TABLE aggregates ADD COLUMN IF NOT EXISTS denominateur numeric NOT NULL DEFAULT 0",
    "ALTER TABLE observations ADD COLUMN IF NOT EXISTS producteur text",
    "ALTER TABLE observations ADD COLUMN IF NOT EXISTS version_explicite boolean NOT NULL "
    "DEFAULT false",
    "ALTER TABLE observations ADD COLUMN IF NOT EXISTS recu bigint NOT NULL DEFAULT 0",
)


def ensure_schema(engine: Engine, catalogue: Catalogue | None = None) -> None:
    """Create or migrate tables, load the referential once per version, and the
    catalogue (when given) at every start."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
        metadata.create_all(conn)
        for statement in MIGRATIONS:
            conn.execute(text(statement))
        conn.execute(text(AGGREGATE_VALUES_VIEW))
        conn.execute(text(NOTIFY_FUNCTION))
        for statement in NOTIFY_TRIGGERS:
            conn.execute(text(statement))
        _load_referential(conn, referential.load())
        if catalogue is not None:
            conn.execute(indicators.delete())
            conn.execute(
                insert(indicators), [i.model_dump() for i in catalogue.indicateurs.values()]
            )


def _load_referential(conn: Connection, ref: referential.Referential) -> None:
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
