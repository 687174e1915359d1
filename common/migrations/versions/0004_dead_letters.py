"""Dead letters kept in Postgres, so that a producer can be told what became
of its batch (the aggregator archives the dead-letter topic here).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS dead_letters (
            record_id text PRIMARY KEY,
            batch_id text,
            position integer,
            stage text NOT NULL,
            reason text NOT NULL,
            detail text NOT NULL,
            payload jsonb,
            at timestamptz NOT NULL
        );
        CREATE INDEX IF NOT EXISTS dead_letters_by_batch ON dead_letters (batch_id);
        GRANT SELECT, INSERT ON dead_letters TO itte_writer;
        GRANT SELECT ON dead_letters TO itte_ingest;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS dead_letters")
