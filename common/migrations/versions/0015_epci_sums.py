"""A département served the sum of its EPCIs' published values (issue #29).

Where every commune of a département belongs to an EPCI lying wholly within
it, and a source published a value for each of those EPCIs, the département
is served their sum (``origine`` ``somme_epci``) for the indicators whose
catalogue entry says ``somme_epci``, where no value is published for the
département itself, by ``priorite`` as a published value. The aggregates
row of the département holds the sum (``valeur_epci``), how many of its
EPCIs have a value (``epci_renseignes``) and how many it has
(``epci_total``, 0: not covered by its EPCIs).

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
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
FIRST = "(coalesce(i.priorite, 'publiee') = 'publiee' OR a.nb_valeurs = 0)"
SHOWN = f"a.publiee AND {FIRST}"
SUMMED = (
    "coalesce(i.somme_epci, false) AND a.epci_total > 0"
    f" AND a.epci_renseignes = a.epci_total AND {FIRST}"
)

VIEW = f"""
CREATE VIEW aggregate_values AS
SELECT a.indicateur, a.sous_champ, a.annee, a.niveau, a.code, t.nom,
       coalesce(i.agregation, 'non_agregeable') AS agregation,
       CASE WHEN {SHOWN} THEN a.valeur_publiee WHEN {SUMMED} THEN a.valeur_epci
            ELSE {AGGREGATED} END AS valeur,
       coalesce(i.unite, a.unite) AS unite,
       CASE WHEN ({SHOWN}) OR ({SUMMED}) THEN t.communes_total ELSE {RENSEIGNEES} END
           AS communes_renseignees,
       t.communes_total, a.revision, a.updated_at, a.change_seq,
       CASE WHEN {SHOWN} THEN 'publiee' WHEN {SUMMED} THEN 'somme_epci' ELSE 'agregee' END
           AS origine,
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


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE aggregates
            ADD COLUMN valeur_epci numeric,
            ADD COLUMN epci_renseignes integer NOT NULL DEFAULT 0,
            ADD COLUMN epci_total integer NOT NULL DEFAULT 0;
        ALTER TABLE indicators ADD COLUMN somme_epci boolean NOT NULL DEFAULT false;
        DROP VIEW aggregate_values;
        {VIEW}
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DROP VIEW aggregate_values;
        {OLD_VIEW}
        ALTER TABLE indicators DROP COLUMN somme_epci;
        ALTER TABLE aggregates DROP COLUMN valeur_epci, DROP COLUMN epci_renseignes,
            DROP COLUMN epci_total;
        """
    )
