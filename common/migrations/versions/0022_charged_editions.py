"""Editions of the map loaded while the services run (issue #29,
``itte referentiel charger``): the files of an edition no release ships,
kept in the database so that every service that starts afterwards reads the
same map, and the year of the edition the stored values are on.

Revision ID: 0022
Revises: 0021
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE referential_files (
            millesime smallint NOT NULL,
            name text NOT NULL,
            content bytea NOT NULL,
            PRIMARY KEY (millesime, name)
        );
        ALTER TABLE referential_meta ADD COLUMN millesime smallint;
        UPDATE referential_meta SET millesime = 2026;
        GRANT SELECT ON referential_files TO itte_reader, itte_writer, itte_ingest;
        GRANT SELECT ON referential_meta TO itte_ingest;
        -- A batch reads the edition FOR SHARE (services/aggregator/store.py
        -- same_edition), which needs an UPDATE right; placing sets it.
        GRANT UPDATE (placed_version) ON referential_meta TO itte_writer;
        -- Placing the stored values on a new edition at an aggregator's
        -- start (services/aggregator/placement.py), under its own login:
        -- a value that leaves is a dead letter (again), groupings follow
        -- their communes.
        GRANT UPDATE ON dead_letters TO itte_writer;
        GRANT INSERT, DELETE ON groupement_communes TO itte_writer;
        GRANT UPDATE (communes_total, updated_at) ON groupements TO itte_writer;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        REVOKE UPDATE (placed_version) ON referential_meta FROM itte_writer;
        REVOKE UPDATE ON dead_letters FROM itte_writer;
        REVOKE INSERT, DELETE ON groupement_communes FROM itte_writer;
        REVOKE UPDATE (communes_total, updated_at) ON groupements FROM itte_writer;
        ALTER TABLE referential_meta DROP COLUMN millesime;
        DROP TABLE referential_files;
        """
    )
