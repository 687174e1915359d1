"""Idempotency keys expire: an index to find the expired ones.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ingest_requests_claimed_at ON ingest_requests (claimed_at)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ingest_requests_claimed_at")
