"""Changes are numbered when they commit, and the relay keeps a cursor.

Before: the relay published the rows whose ``revision`` was above their
``published_revision``, then marked each one (a second write of every
changed row, about a third of Postgres' work in a bulk load). Now the
transaction that changes an aggregate gives it the next ``change_seq``
(under an advisory lock held to commit, so numbers become visible in order),
and the relay publishes the rows numbered after its cursor
(``outbox_cursor``), then moves the cursor: one row written per page.

Rows still waiting for the relay are numbered now, after the cursor, so
they are published once; the published ones keep their numbers.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = """
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
       t.communes_total, a.revision, {published}a.updated_at, a.change_seq
FROM aggregates a
JOIN territories t ON (t.niveau, t.code) = (a.niveau, a.code)
LEFT JOIN indicators i ON i.id = a.indicateur
"""
GRANTS = """
GRANT SELECT ON aggregate_values TO itte_reader, itte_writer;
"""


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE IF NOT EXISTS outbox_cursor (
            relay text PRIMARY KEY,
            published_seq bigint NOT NULL
        );
        GRANT SELECT, INSERT, UPDATE ON outbox_cursor TO itte_writer;
        -- Every number taken so far is at or below the cursor...
        INSERT INTO outbox_cursor
            SELECT 'aggregates', CASE WHEN is_called THEN last_value ELSE 0 END
            FROM aggregate_changes
        ON CONFLICT (relay) DO NOTHING;
        -- ...and what was waiting for the relay is numbered after it.
        LOCK TABLE aggregates IN EXCLUSIVE MODE;
        UPDATE aggregates a SET change_seq = n.seq
        FROM (
            SELECT indicateur, sous_champ, annee, niveau, code,
                   nextval('aggregate_changes') AS seq
            FROM (
                SELECT indicateur, sous_champ, annee, niveau, code FROM aggregates
                WHERE revision > published_revision
                ORDER BY indicateur, sous_champ, annee, niveau, code
            ) ordered
        ) n
        WHERE (a.indicateur, a.sous_champ, a.annee, a.niveau, a.code)
            = (n.indicateur, n.sous_champ, n.annee, n.niveau, n.code);
        DROP VIEW aggregate_values;
        DROP INDEX IF EXISTS aggregates_unpublished;
        ALTER TABLE aggregates DROP COLUMN published_revision;
        CREATE VIEW aggregate_values AS {COLUMNS.format(published="")};
        {GRANTS}
        """
    )


def downgrade() -> None:
    # What the relay has not published yet becomes pending again.
    op.execute(
        f"""
        DROP VIEW aggregate_values;
        ALTER TABLE aggregates
            ADD COLUMN published_revision bigint NOT NULL DEFAULT 0;
        UPDATE aggregates SET published_revision = revision
        WHERE change_seq <= (SELECT published_seq FROM outbox_cursor
                             WHERE relay = 'aggregates');
        CREATE INDEX aggregates_unpublished
            ON aggregates (indicateur, sous_champ, annee, niveau, code)
            WHERE revision > published_revision;
        CREATE VIEW aggregate_values AS {COLUMNS.format(published="a.published_revision, ")};
        {GRANTS}
        DROP TABLE outbox_cursor;
        """
    )
