"""Objectives with a path (issue #32): a baseline year and value, the shape
of the path to the target, how far from it is still on it; and a
territory's own objectives (a PCAET's) beside the national ones.

Revision ID: 0020
Revises: 0019
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE objectives
            ADD COLUMN annee_reference integer,
            ADD COLUMN valeur_reference numeric,
            ADD COLUMN trajectoire text NOT NULL DEFAULT 'lineaire',
            ADD COLUMN tolerance numeric NOT NULL DEFAULT 0.02,
            ADD COLUMN niveau text NOT NULL DEFAULT 'france',
            ADD COLUMN code text NOT NULL DEFAULT 'FR';
        ALTER TABLE objectives DROP CONSTRAINT objectives_pkey;
        ALTER TABLE objectives ADD PRIMARY KEY (indicateur, sous_champ, annee, niveau, code);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DELETE FROM objectives WHERE niveau <> 'france';
        ALTER TABLE objectives DROP CONSTRAINT objectives_pkey;
        ALTER TABLE objectives ADD PRIMARY KEY (indicateur, sous_champ, annee);
        ALTER TABLE objectives
            DROP COLUMN annee_reference, DROP COLUMN valeur_reference,
            DROP COLUMN trajectoire, DROP COLUMN tolerance,
            DROP COLUMN niveau, DROP COLUMN code;
        """
    )
