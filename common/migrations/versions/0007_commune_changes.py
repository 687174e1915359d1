"""Commune-level changes are published too (``ITTE_PUBLISH_COMMUNES``): the
outbox index covers every level. Commune rows never published become
pending, so a subscriber of ``indicators.aggregates`` gets them once.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        DROP INDEX IF EXISTS aggregates_unpublished;
        CREATE INDEX aggregates_unpublished
            ON aggregates (indicateur, sous_champ, annee, niveau, code)
            WHERE revision > published_revision;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX IF EXISTS aggregates_unpublished;
        CREATE INDEX aggregates_unpublished
            ON aggregates (indicateur, sous_champ, annee, niveau, code)
            WHERE revision > published_revision AND niveau <> 'commune';
        """
    )
