"""Backups that restore (issue #31): each ``itte sauvegarde`` writes, just
before its dump, the offsets the aggregator's consumer groups had
committed. Every record before them is in the dump; ``itte restauration``
sets the groups back to them, and the aggregator applies again what came
after (a record applied twice changes nothing: versions).

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE backups (
            id bigserial PRIMARY KEY,
            taken_at timestamptz NOT NULL DEFAULT now(),
            offsets jsonb NOT NULL
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE backups;")
