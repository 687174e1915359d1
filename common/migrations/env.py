"""Alembic's environment: itte runs migrations on a connection it opened
(``common.migrations.upgrade``), never from an ini file."""

from alembic import context

from common.db import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
