"""Groupings of communes that users define (issue #29): a SCoT, a PETR, a
watershed, an EPT. Each is a named list of current communes; the API
aggregates every indicator over it as over an EPCI, from the communes'
aggregates at the time of the request.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE groupements (
            code varchar(40) PRIMARY KEY,
            nom text NOT NULL,
            communes_total integer NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE groupement_communes (
            groupement varchar(40) NOT NULL REFERENCES groupements ON DELETE CASCADE,
            commune varchar(5) NOT NULL,
            PRIMARY KEY (groupement, commune)
        );
        GRANT SELECT ON groupements, groupement_communes TO itte_reader, itte_writer;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE groupement_communes; DROP TABLE groupements;")
