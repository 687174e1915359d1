"""The referential the stored values are placed on (issue #29): `itte
migrate` loads a new referential (its version in ``version``); the
aggregator, at its next start, places every stored value again by it and
recomputes what moves, then records it here. Until then the two differ.

Revision ID: 0019
Revises: 0018
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE referential_meta ADD COLUMN placed_version text;
        UPDATE referential_meta SET placed_version = version;
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE referential_meta DROP COLUMN placed_version")
