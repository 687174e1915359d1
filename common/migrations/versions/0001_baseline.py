"""Baseline: the schema of itte 0.1.0.

Written to run on an empty database and on one that itte 0.1.0's services
set up themselves, before migrations existed (every statement is "if not
exists" or "or replace", and the columns added during 0.1.0 are added when
missing). Later migrations assume nothing of the kind.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = """
CREATE TABLE IF NOT EXISTS communes (
    code varchar(5) PRIMARY KEY,
    nom text NOT NULL,
    departement varchar(3) NOT NULL,
    region varchar(3) NOT NULL,
    epci varchar(9),
    population integer
);
CREATE INDEX IF NOT EXISTS ix_communes_departement ON communes (departement);
CREATE INDEX IF NOT EXISTS ix_communes_region ON communes (region);
CREATE INDEX IF NOT EXISTS ix_communes_epci ON communes (epci);

CREATE TABLE IF NOT EXISTS territories (
    niveau varchar(12),
    code varchar(9),
    nom text NOT NULL,
    communes_total integer NOT NULL,
    PRIMARY KEY (niveau, code)
);

CREATE TABLE IF NOT EXISTS former_codes (
    ancien varchar(5) PRIMARY KEY,
    actuel varchar(5) NOT NULL
);

CREATE TABLE IF NOT EXISTS referential_meta (
    id serial PRIMARY KEY,
    version text NOT NULL,
    loaded_at timestamptz DEFAULT now()
);

CREATE TABLE IF NOT EXISTS observations (
    indicateur text,
    sous_champ text,
    annee integer,
    commune_source varchar(5),
    commune varchar(5) NOT NULL,
    valeur numeric,
    marqueur text,
    unite text,
    libelle_indicateur text,
    libelle_sous_champ text,
    version bigint NOT NULL,
    record_id text NOT NULL,
    pii jsonb,
    pii_key_id text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (indicateur, sous_champ, annee, commune_source)
);
ALTER TABLE observations ADD COLUMN IF NOT EXISTS producteur text;
ALTER TABLE observations ADD COLUMN IF NOT EXISTS version_explicite boolean NOT NULL
    DEFAULT false;
ALTER TABLE observations ADD COLUMN IF NOT EXISTS recu bigint NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS aggregates (
    indicateur text,
    sous_champ text,
    annee integer,
    niveau varchar(12),
    code varchar(9),
    valeur numeric NOT NULL,
    nb_valeurs integer NOT NULL,
    unite text,
    revision bigint NOT NULL,
    published_revision bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (indicateur, sous_champ, annee, niveau, code)
);
ALTER TABLE aggregates ADD COLUMN IF NOT EXISTS numerateur numeric NOT NULL DEFAULT 0;
ALTER TABLE aggregates ADD COLUMN IF NOT EXISTS denominateur numeric NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS aggregates_unpublished
    ON aggregates (indicateur, sous_champ, annee, niveau, code)
    WHERE revision > published_revision AND niveau <> 'commune';
CREATE INDEX IF NOT EXISTS aggregates_by_territory ON aggregates (niveau, code);

CREATE TABLE IF NOT EXISTS indicators (
    id text PRIMARY KEY,
    libelle text NOT NULL,
    unite text,
    description text NOT NULL,
    source text NOT NULL,
    min numeric,
    max numeric,
    agregation text NOT NULL,
    numerateur text,
    denominateur text,
    facteur numeric NOT NULL,
    poids text
);

CREATE TABLE IF NOT EXISTS ingest_requests (
    producer text,
    key text,
    body_sha256 text NOT NULL,
    status integer,
    response jsonb,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (producer, key)
);
"""

# What readers see: each aggregate with its territory and its value computed
# by its indicator's rule. The API and the outbox relay both read this view.
AGGREGATE_VALUES_VIEW = """
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
       t.communes_total, a.revision, a.published_revision, a.updated_at
FROM aggregates a
JOIN territories t ON (t.niveau, t.code) = (a.niveau, a.code)
LEFT JOIN indicators i ON i.id = a.indicateur
"""

# Readers that cache (the API) learn of every change to what they serve: each
# statement that writes these tables notifies the channel itte_changes
# (common.db.CHANGES_CHANNEL), delivered when its transaction commits.
NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION itte_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('itte_changes', TG_TABLE_NAME);
    RETURN NULL;
END $$
"""
SERVED_TABLES = ("aggregates", "indicators", "territories")


def upgrade() -> None:
    op.execute(TABLES)
    op.execute(AGGREGATE_VALUES_VIEW)
    op.execute(NOTIFY_FUNCTION)
    for table in SERVED_TABLES:
        op.execute(
            "CREATE OR REPLACE TRIGGER itte_notify_change AFTER INSERT OR UPDATE OR DELETE "
            f"OR TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION itte_notify_change()"
        )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS aggregate_values")
    for table in (*SERVED_TABLES, "communes", "former_codes", "referential_meta"):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("DROP TABLE IF EXISTS observations, ingest_requests CASCADE")
    op.execute("DROP FUNCTION IF EXISTS itte_notify_change()")
