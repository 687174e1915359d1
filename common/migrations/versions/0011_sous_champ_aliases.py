"""The codes sources use for an indicator's sub-fields (catalogue
``alias_sous_champs``: ``moins30`` for ``moins_30_ans``), loaded by the
aggregator with the catalogue and served by ``/indicateurs/catalogue``.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE indicators
            ADD COLUMN IF NOT EXISTS alias_sous_champs jsonb NOT NULL DEFAULT '{}'::jsonb;
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE indicators DROP COLUMN IF EXISTS alias_sous_champs;")
