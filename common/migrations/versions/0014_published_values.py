"""Values published for a territory above the commune (issue #29).

A source may publish an EPCI's, a département's, a région's or France's
value itself (a PCAET's inventory, a regional energy balance). Each such
observation is kept in ``published_values`` under the version rule of the
communes' observations; the aggregates row of its territory holds it as
``valeur_publiee`` (``publiee``: one is there, even secret), beside the value
aggregated from the communes, and never adds into anything. The view serves
either as ``valeur`` by the indicator's ``priorite`` and says which
(``origine``); both are always there.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

AGGREGATED = """CASE
           WHEN a.nb_valeurs = 0 THEN NULL
           WHEN i.agregation = 'ratio'
               THEN a.numerateur / NULLIF(a.denominateur, 0) * i.facteur
           WHEN i.agregation = 'moyenne_ponderee' AND a.niveau <> 'commune'
               THEN a.numerateur / NULLIF(a.denominateur, 0)
           ELSE a.valeur
       END"""
RENSEIGNEES = "CASE WHEN a.niveau = 'commune' THEN least(a.nb_valeurs, 1) ELSE a.nb_valeurs END"
SHOWN = "a.publiee AND (coalesce(i.priorite, 'publiee') = 'publiee' OR a.nb_valeurs = 0)"

VIEW = f"""
CREATE VIEW aggregate_values AS
SELECT a.indicateur, a.sous_champ, a.annee, a.niveau, a.code, t.nom,
       coalesce(i.agregation, 'non_agregeable') AS agregation,
       CASE WHEN {SHOWN} THEN a.valeur_publiee ELSE {AGGREGATED} END AS valeur,
       coalesce(i.unite, a.unite) AS unite,
       CASE WHEN {SHOWN} THEN t.communes_total ELSE {RENSEIGNEES} END AS communes_renseignees,
       t.communes_total, a.revision, a.updated_at, a.change_seq,
       CASE WHEN {SHOWN} THEN 'publiee' ELSE 'agregee' END AS origine,
       a.valeur_publiee
FROM aggregates a
JOIN territories t ON (t.niveau, t.code) = (a.niveau, a.code)
LEFT JOIN indicators i ON i.id = a.indicateur;
GRANT SELECT ON aggregate_values TO itte_reader, itte_writer;
"""

OLD_VIEW = f"""
CREATE VIEW aggregate_values AS
SELECT a.indicateur, a.sous_champ, a.annee, a.niveau, a.code, t.nom,
       coalesce(i.agregation, 'non_agregeable') AS agregation,
       {AGGREGATED} AS valeur,
       coalesce(i.unite, a.unite) AS unite,
       {RENSEIGNEES} AS communes_renseignees,
       t.communes_total, a.revision, a.updated_at, a.change_seq
FROM aggregates a
JOIN territories t ON (t.niveau, t.code) = (a.niveau, a.code)
LEFT JOIN indicators i ON i.id = a.indicateur;
GRANT SELECT ON aggregate_values TO itte_reader, itte_writer;
"""


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE published_values (
            indicateur text NOT NULL,
            sous_champ text NOT NULL,
            annee integer NOT NULL,
            niveau varchar(12) NOT NULL,
            code varchar(9) NOT NULL,
            valeur numeric,
            marqueur text,
            unite text,
            libelle_indicateur text,
            libelle_sous_champ text,
            version bigint NOT NULL,
            version_explicite boolean NOT NULL DEFAULT false,
            recu bigint NOT NULL DEFAULT 0,
            record_id text NOT NULL,
            pii jsonb,
            pii_key_id text,
            producteur text,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (indicateur, sous_champ, annee, niveau, code)
        );
        GRANT SELECT, INSERT, UPDATE, DELETE ON published_values TO itte_writer;
        ALTER TABLE aggregates
            ADD COLUMN valeur_publiee numeric,
            ADD COLUMN publiee boolean NOT NULL DEFAULT false;
        ALTER TABLE indicators ADD COLUMN priorite text NOT NULL DEFAULT 'publiee';
        DROP VIEW aggregate_values;
        {VIEW}
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DROP VIEW aggregate_values;
        {OLD_VIEW}
        ALTER TABLE indicators DROP COLUMN priorite;
        ALTER TABLE aggregates DROP COLUMN valeur_publiee, DROP COLUMN publiee;
        DROP TABLE published_values;
        """
    )
