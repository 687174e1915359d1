"""The older editions of the map (issue #29): each edition's communes and
territories, and how a code of any edition lands on its communes, so that
the API serves aggregates on the map of a year (``millesime``). Filled from
the shipped referential by ``itte migrate`` (common/db/editions.py).

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE editions (
            millesime smallint PRIMARY KEY,
            version text NOT NULL,
            communes_total integer NOT NULL
        );
        CREATE TABLE edition_communes (
            millesime smallint NOT NULL,
            code varchar(5) NOT NULL,
            nom text NOT NULL,
            departement varchar(3) NOT NULL,
            region varchar(3) NOT NULL,
            epci varchar(9),
            population integer,
            PRIMARY KEY (millesime, code)
        );
        CREATE TABLE edition_territories (
            millesime smallint NOT NULL,
            niveau varchar(12) NOT NULL,
            code varchar(9) NOT NULL,
            nom text NOT NULL,
            communes_total integer NOT NULL,
            PRIMARY KEY (millesime, niveau, code)
        );
        -- A code as sent, read on the edition `cle` (the edition of its
        -- value's year), on the communes of the edition `millesime`: `part`
        -- of `total` of its value each. Rows with cle = millesime hold for
        -- every key; those of a later cle win over them.
        CREATE TABLE edition_passage (
            millesime smallint NOT NULL,
            cle smallint NOT NULL,
            code varchar(5) NOT NULL,
            commune varchar(5) NOT NULL,
            part bigint NOT NULL,
            total bigint NOT NULL,
            PRIMARY KEY (millesime, code, cle, commune)
        );
        GRANT SELECT ON editions, edition_communes, edition_territories, edition_passage
            TO itte_reader, itte_writer;
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TABLE edition_passage; DROP TABLE edition_territories; "
        "DROP TABLE edition_communes; DROP TABLE editions;"
    )
