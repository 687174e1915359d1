"""What became of each pushed batch, for its producer (``GET /observations/{id}``).

- ``ingest_batches`` (the ingestor's): one row per batch pushed over HTTP,
  written before the batch is published: its producer, how many records it
  published, the request line of each (when they are not 1..n) and the lines
  the request refused (``mode=partial``).
- ``batch_progress`` (the aggregator's): for each of those batches, a bit per
  record that is in the results. Marking is an OR: a replay, or a batch cut
  into other pieces on a replay, never counts a record twice.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS ingest_batches (
            batch_id text PRIMARY KEY,
            producer text NOT NULL,
            accepted integer NOT NULL,
            lines integer[],
            refused jsonb NOT NULL DEFAULT '[]',
            received_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS ingest_batches_received_at ON ingest_batches (received_at);
        CREATE TABLE IF NOT EXISTS batch_progress (
            batch_id text PRIMARY KEY,
            clean bit varying NOT NULL
        );
        GRANT SELECT, INSERT, DELETE ON ingest_batches TO itte_ingest;
        GRANT SELECT, DELETE ON batch_progress TO itte_ingest;
        GRANT SELECT (batch_id) ON ingest_batches TO itte_writer;
        GRANT SELECT, INSERT, UPDATE ON batch_progress TO itte_writer;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS batch_progress; DROP TABLE IF EXISTS ingest_batches")
