"""The database schema, owned by one Alembic history (``versions/``).

``itte migrate`` (and ``itte up``, and compose's ``migrate`` service) bring a
database to the head revision and load the referential; the services only
check that it is there, and never create a table.

Alembic is imported by :func:`upgrade` alone: the services that only check
the revision do not carry it (about 10 MB of memory each).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from common import db, referential
from schemas.catalogue import Catalogue

# The newest file in versions/ (a test keeps the two in step).
HEAD = "0022"
SCRIPTS = Path(__file__).parent
# Advisory lock: two `itte migrate` at once (compose restarts, tests) take turns.
MIGRATION_LOCK = 7_277_410


class SchemaNotReady(RuntimeError):
    """The database is not at the schema this code expects."""


def current(conn: Connection) -> str | None:
    """The database's revision; None before any migration."""
    if conn.execute(text("SELECT to_regclass('alembic_version')")).scalar() is None:
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Migrate to the head revision, then load the referential and its older
    editions if their versions changed."""
    from alembic import command
    from alembic.config import Config

    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        config = Config()
        config.set_main_option("script_location", str(SCRIPTS))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        db.load_referential(conn, referential.load())
        db.load_editions(conn)


def new_database(server_url: str, name: str, indicators: Catalogue) -> str:
    """A new database on the server of ``server_url``, at the head revision
    with the referential and ``indicators`` loaded (as ``itte migrate`` and
    the aggregator leave one): its URL. For tests and benchmarks, which need
    a database of their own on a shared server."""
    url = db.create_database(server_url, name)
    engine = db.make_engine(url)
    try:
        upgrade(engine)
        db.load_catalogue(engine, indicators)
    finally:
        engine.dispose()
    return url


# The login of each service, and the role (migration 0002) it is a member of.
LOGINS = {
    "itte_api": "itte_reader",
    "itte_ingestor": "itte_ingest",
    "itte_aggregator": "itte_writer",
    # The Postgres exporter: Postgres's own statistics, none of itte's tables.
    "itte_monitor": "pg_monitor",
}
# itte's own roles (migration 0002); pg_monitor is Postgres's.
ROLES = frozenset(role for role in LOGINS.values() if not role.startswith("pg_"))


def grant_logins(engine: Engine, passwords: Mapping[str, str]) -> None:
    """Create (or give a new password to) the login of each service named in
    ``passwords``, as a member of its role only."""
    from psycopg import sql

    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        for login, password in passwords.items():
            role = LOGINS[login]
            exists = conn.execute(
                text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": login}
            ).scalar()
            statement = (
                "ALTER ROLE {} WITH LOGIN PASSWORD {}"
                if exists
                else ("CREATE ROLE {} WITH LOGIN PASSWORD {}")
            )
            cursor.execute(sql.SQL(statement).format(sql.Identifier(login), sql.Literal(password)))
            cursor.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(login))
            )


def require_current(engine: Engine) -> None:
    """Raise :class:`SchemaNotReady` unless the database is at :data:`HEAD`."""
    with engine.connect() as conn:
        found = current(conn)
    if found != HEAD:
        raise SchemaNotReady(
            f"the database schema is at revision {found or 'none'}, this itte needs "
            f"{HEAD}: run `itte migrate` first"
        )
