"""Comparing territories: which way is better for each indicator, the
sub-fields it is published by, and the national objectives (catalogue
``[[objectif]]``), all loaded by the aggregator with the catalogue.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE indicators ADD COLUMN IF NOT EXISTS sens text;
        ALTER TABLE indicators
            ADD COLUMN IF NOT EXISTS sous_champs jsonb NOT NULL DEFAULT '{}'::jsonb;
        CREATE TABLE IF NOT EXISTS objectives (
            indicateur text NOT NULL,
            sous_champ text NOT NULL,
            annee integer NOT NULL,
            valeur numeric NOT NULL,
            echelle text NOT NULL,
            libelle text NOT NULL,
            source text NOT NULL,
            PRIMARY KEY (indicateur, sous_champ, annee)
        );
        GRANT SELECT ON objectives TO itte_reader;
        GRANT SELECT, INSERT, UPDATE, DELETE ON objectives TO itte_writer;
        CREATE OR REPLACE TRIGGER itte_notify_change
            AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON objectives
            FOR EACH STATEMENT EXECUTE FUNCTION itte_notify_change();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE IF EXISTS objectives;
        ALTER TABLE indicators DROP COLUMN IF EXISTS sous_champs;
        ALTER TABLE indicators DROP COLUMN IF EXISTS sens;
        """
    )
