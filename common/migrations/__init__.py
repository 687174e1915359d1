"""The database schema, owned by one Alembic history (``versions/``).

``itte migrate`` (and ``itte up``, and compose's ``migrate`` service) bring a
database to the head revision and load the referential; the services only
check that it is there, and never create a table.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from common import db, referential

# Advisory lock: two `itte migrate` at once (compose restarts, tests) take turns.
MIGRATION_LOCK = 7_277_410


class SchemaNotReady(RuntimeError):
    """The database is not at the schema this code expects."""


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["connection"] = conn
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to ``revision``, then load the referential if its version changed."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        command.upgrade(_config(conn), revision)
        if revision == "head":
            db.load_referential(conn, referential.load())


def require_current(engine: Engine) -> None:
    """Raise :class:`SchemaNotReady` unless the database is at the head revision."""
    with engine.connect() as conn:
        found = current(conn)
    if found != head():
        raise SchemaNotReady(
            f"the database schema is at revision {found or 'none'}, this itte needs "
            f"{head()}: run `itte migrate` first"
        )
