"""The change feed read from a log, so that changing an aggregate is a
heap-only update.

Every change moved ``change_seq``, and ``change_seq`` was indexed (the relay
and the change feed read by it): so every update of an ``aggregates`` row
wrote a new entry in each of its three indexes. Now the number is also
written to ``aggregate_change_log`` (primary key ``change_seq``, and the
aggregate's key), the statement that changes a row deletes the entry of the
number it replaces (``previous_seq``), and ``aggregates`` loses the index and
keeps room on its pages (fillfactor 70) for the new versions: an update that
moves no indexed column and finds room on its page is heap-only
(docs/measurements.md). The log holds one entry for each numbered row.

Pages written before keep no room; they gain it as rows move.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        LOCK TABLE aggregates IN EXCLUSIVE MODE;
        ALTER TABLE aggregates ADD COLUMN previous_seq bigint;
        CREATE TABLE aggregate_change_log (
            change_seq bigint PRIMARY KEY,
            indicateur text NOT NULL,
            sous_champ text NOT NULL,
            annee integer NOT NULL,
            niveau varchar(12) NOT NULL,
            code varchar(9) NOT NULL
        );
        INSERT INTO aggregate_change_log
            SELECT change_seq, indicateur, sous_champ, annee, niveau, code
            FROM aggregates WHERE change_seq IS NOT NULL;
        DROP INDEX aggregates_by_change;
        ALTER TABLE aggregates SET (fillfactor = 70);
        GRANT SELECT, INSERT, DELETE ON aggregate_change_log TO itte_writer;
        GRANT SELECT ON aggregate_change_log TO itte_reader;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE aggregates RESET (fillfactor);
        CREATE INDEX aggregates_by_change ON aggregates (change_seq)
            WHERE change_seq IS NOT NULL;
        DROP TABLE aggregate_change_log;
        ALTER TABLE aggregates DROP COLUMN previous_seq;
        """
    )
