"""Each hand-over of observations from one producer to another
(``itte proprietaire``), kept: who owned them, who owns them now, how many,
when. Written by the operator's command, read by nobody else.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS ownership_transfers (
            id bigserial PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT now(),
            indicateur text NOT NULL,
            annee int,
            niveau text,
            code text,
            ancien text,
            nouveau text,
            observations int NOT NULL
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS ownership_transfers;")
