"""Postgres schema shared by the aggregator (writer) and the API (reader).

Domain words stay French as in the source data (indicateur, annee, valeur,
sous_champ); values are NUMERIC so running sums stay exact under corrections.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
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
    Column("record_id", Text, nullable=False),
    Column("pii", JSONB),
    Column("pii_key_id", Text),
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

_SCHEMA_LOCK = 7_277_410  # advisory lock id: services may start together


def sqlalchemy_url(database_url: str) -> str:
    """``postgresql://…`` (libpq form, what users configure) → SQLAlchemy + psycopg 3."""
    scheme, sep, rest = database_url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return database_url if sep else f"postgresql+psycopg://{database_url}"


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    return create_engine(sqlalchemy_url(database_url), pool_pre_ping=True, **kwargs)


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


def ensure_schema(engine: Engine) -> None:
    """Create tables and load the referential, once per referential version."""
    ref = referential.load()
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
        metadata.create_all(conn)
        loaded = conn.execute(select(referential_meta.c.version)).scalar()
        if loaded == ref.version:
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
