"""The change feed: each aggregate, when its change is published, takes the
next number of one sequence (``change_seq``). Subscribers read the changes
after a cursor (``GET /indicateurs/changements``, ``/indicateurs/flux``).

The relay numbers its publications under an advisory lock held to commit,
so numbers become visible in order: a reader that saw N has seen every
number below it. Changes already published get a number now, in key order,
so that a subscriber starting from 0 reads the whole current state.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The view of 0001, with change_seq added at its end (CREATE OR REPLACE VIEW
# may only add columns there).
VIEW = """
CREATE OR REPLACE VIEW aggregate_values AS
SELECT a.indicateur, a.sous_champ, a.annee, a.niveau, a.code, t.nom,
       coalesce(i.agregation, 'non_agregeable') AS agregation,
       CASE
           WHEN a.nb_valeurs = 0 THEN NULL
           WHEN i.agregation = 'ratio'
               THEN a.numerateur / NULLIF(a.denominateur, 0) * i.facteur
           WHEN i.agregation = 'moyenne_ponderee' AND a.niveau <> 'commune'
               THEN a.numerateur / NULLIF(a.denominateur, 0)
           ELSE a.valeur
       END AS valeur,
       coalesce(i.unite, a.unite) AS unite,
       CASE WHEN a.niveau = 'commune' THEN least(a.nb_valeurs, 1) ELSE a.nb_valeurs END
           AS communes_renseignees,
       t.communes_total, a.revision, a.published_revision, a.updated_at, a.change_seq
FROM aggregates a
JOIN territories t ON (t.niveau, t.code) = (a.niveau, a.code)
LEFT JOIN indicators i ON i.id = a.indicateur
"""


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE aggregates ADD COLUMN IF NOT EXISTS change_seq bigint;
        CREATE SEQUENCE IF NOT EXISTS aggregate_changes;
        UPDATE aggregates a SET change_seq = n.seq
        FROM (
            SELECT indicateur, sous_champ, annee, niveau, code,
                   nextval('aggregate_changes') AS seq
            FROM (
                SELECT indicateur, sous_champ, annee, niveau, code FROM aggregates
                WHERE change_seq IS NULL AND published_revision > 0 AND niveau <> 'commune'
                ORDER BY indicateur, sous_champ, annee, niveau, code
            ) ordered
        ) n
        WHERE (a.indicateur, a.sous_champ, a.annee, a.niveau, a.code)
            = (n.indicateur, n.sous_champ, n.annee, n.niveau, n.code);
        CREATE INDEX IF NOT EXISTS aggregates_by_change ON aggregates (change_seq)
            WHERE change_seq IS NOT NULL;
        GRANT USAGE ON SEQUENCE aggregate_changes TO itte_writer;
        """
    )
    op.execute(VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS aggregate_values")
    op.execute(
        "DROP INDEX IF EXISTS aggregates_by_change; "
        "ALTER TABLE aggregates DROP COLUMN IF EXISTS change_seq; "
        "DROP SEQUENCE IF EXISTS aggregate_changes"
    )
