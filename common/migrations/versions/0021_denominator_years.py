"""A ratio's denominator of an earlier year (issue #29, population by year).

A ratio whose catalogue entry says ``repli_denominateur = N`` pairs a
commune's numerator of year Y with its denominator of Y or, where it has
none that year, of its latest earlier year within N. Each aggregates row
keeps, over its paired communes, how many used an earlier year
(``replis``), the sum of their years back (``repli_annees``) and of their
squares (``repli_carres``): all three add up under any change, and the row's
communes share one year exactly when nb_valeurs × repli_carres =
repli_annees² (Cauchy–Schwarz), which is then Y − repli_annees / nb_valeurs.
The view serves it as ``annee_denominateur`` (null when they differ) and
``communes_repli``; a ratio shown from published terms (its territory's own,
or its EPCIs' sums) pairs terms of its own year.

Revision ID: 0021
Revises: 0020
"""

from alembic import op

revision = "0021"
down_revision = "0020"
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
ANNEE_DENOMINATEUR = f"""CASE
           WHEN i.agregation IS DISTINCT FROM 'ratio' THEN NULL
           WHEN ({SHOWN}) OR ({SUMMED}) THEN a.annee
           WHEN a.nb_valeurs > 0
                AND a.nb_valeurs * a.repli_carres = a.repli_annees * a.repli_annees
               THEN a.annee - a.repli_annees / a.nb_valeurs
       END"""
COMMUNES_REPLI = f"""CASE
           WHEN i.agregation IS DISTINCT FROM 'ratio' THEN NULL
           WHEN ({SHOWN}) OR ({SUMMED}) THEN 0
           ELSE a.replis
       END"""

COLUMNS = f"""a.indicateur, a.sous_champ, a.annee, a.niveau, a.code, t.nom,
       coalesce(i.agregation, 'non_agregeable') AS agregation,
       CASE WHEN {SHOWN} THEN a.valeur_publiee WHEN {SUMMED} THEN a.valeur_epci
            ELSE {AGGREGATED} END AS valeur,
       coalesce(i.unite, a.unite) AS unite,
       CASE WHEN ({SHOWN}) OR ({SUMMED}) THEN t.communes_total ELSE {RENSEIGNEES} END
           AS communes_renseignees,
       t.communes_total, a.revision, a.updated_at, a.change_seq,
       CASE WHEN {SHOWN} THEN 'publiee' WHEN {SUMMED} THEN 'somme_epci' ELSE 'agregee' END
           AS origine,
       a.valeur_publiee"""
FROM = """
FROM aggregates a
JOIN territories t ON (t.niveau, t.code) = (a.niveau, a.code)
LEFT JOIN indicators i ON i.id = a.indicateur;
GRANT SELECT ON aggregate_values TO itte_reader, itte_writer;
"""
VIEW = f"""CREATE VIEW aggregate_values AS SELECT {COLUMNS},
       ({ANNEE_DENOMINATEUR})::int AS annee_denominateur,
       {COMMUNES_REPLI} AS communes_repli {FROM}"""
OLD_VIEW = f"CREATE VIEW aggregate_values AS SELECT {COLUMNS} {FROM}"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE aggregates
            ADD COLUMN replis integer NOT NULL DEFAULT 0,
            ADD COLUMN repli_annees bigint NOT NULL DEFAULT 0,
            ADD COLUMN repli_carres bigint NOT NULL DEFAULT 0;
        ALTER TABLE indicators ADD COLUMN repli_denominateur integer NOT NULL DEFAULT 0;
        DROP VIEW aggregate_values;
        {VIEW}
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DROP VIEW aggregate_values;
        {OLD_VIEW}
        ALTER TABLE indicators DROP COLUMN repli_denominateur;
        ALTER TABLE aggregates DROP COLUMN replis, DROP COLUMN repli_annees,
            DROP COLUMN repli_carres;
        """
    )
