"""Caches learn which indicators and years changed, not only that the
aggregates did: a transaction that sets ``itte.announced`` (the aggregator,
common/db/changes.py ANNOUNCING) notifies each (indicateur, annee) it wrote
itself, and the statement trigger stays silent for its writes to
``aggregates``. Any other writer (``itte rebuild``, plain SQL) still
notifies the table's name: everything may have changed.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION itte_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_TABLE_NAME = 'aggregates'
               AND current_setting('itte.announced', true) = 'on' THEN
                RETURN NULL;  -- its writer announces each indicator and year itself
            END IF;
            PERFORM pg_notify('itte_changes', TG_TABLE_NAME);
            RETURN NULL;
        END $$
        """
    )


def downgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION itte_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('itte_changes', TG_TABLE_NAME);
            RETURN NULL;
        END $$
        """
    )
