"""Roles: each service gets the least it needs.

- ``itte_reader`` (the API): SELECT on what it serves, nothing else: not the
  observations (they hold hashed personal fields) nor the idempotency keys.
- ``itte_ingest`` (the ingestor): its own table, ``ingest_requests``.
- ``itte_writer`` (the aggregator): observations, aggregates and the catalogue
  it loads; the referential read-only.

They cannot log in: ``itte migrate`` creates one login per service, member of
its role, when given its password (docs/operations.md, "Least privilege"). Roles belong to
the whole Postgres cluster: one that exists already is kept.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ROLES = ("itte_reader", "itte_ingest", "itte_writer")
REFERENTIAL = "communes, territories, former_codes, referential_meta"


def upgrade() -> None:
    for role in ROLES:
        # Another database of the cluster may be creating it at this moment.
        op.execute(
            f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {', '.join(ROLES)}")
    op.execute(f"GRANT SELECT ON aggregate_values, indicators, {REFERENTIAL} TO itte_reader")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ingest_requests TO itte_ingest")
    op.execute(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON observations, aggregates, indicators "
        "TO itte_writer"
    )
    op.execute(f"GRANT SELECT ON aggregate_values, {REFERENTIAL} TO itte_writer")


def downgrade() -> None:
    for role in ROLES:
        op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        op.execute(f"REVOKE USAGE ON SCHEMA public FROM {role}")
