"""The Postgres tables, as SQLAlchemy sees them: the aggregator writes, the API reads.

The migrations (``common/migrations``) create them; a test checks that both agree.

Domain words stay French as in the source data (indicateur, annee, valeur,
sous_champ); values are NUMERIC so running sums stay exact under corrections.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, BIT, JSONB

metadata = MetaData()

communes = Table(
    "communes",
    metadata,
    Column("code", String(5), primary_key=True),
    Column("nom", Text, nullable=False),
    Column("departement", String(3), nullable=False, index=True),
    Column("region", String(3), nullable=False, index=True),
    Column("epci", String(9), index=True),
    Column("population", Integer),
)

territories = Table(
    "territories",
    metadata,
    Column("niveau", String(12), primary_key=True),
    Column("code", String(9), primary_key=True),
    Column("nom", Text, nullable=False),
    Column("communes_total", Integer, nullable=False),
)

# Groupings of communes users define (migration 0016): the API aggregates
# over them at the time of a request (services/api/groupements.py).
groupements = Table(
    "groupements",
    metadata,
    Column("code", String(40), primary_key=True),
    Column("nom", Text, nullable=False),
    Column("communes_total", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

groupement_communes = Table(
    "groupement_communes",
    metadata,
    Column(
        "groupement",
        String(40),
        ForeignKey("groupements.code", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("commune", String(5), primary_key=True),
)

# Each backup's starting point (migration 0018, itte/backup.py): the
# offsets the aggregator's groups had committed before the dump began.
backups = Table(
    "backups",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("taken_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("offsets", JSONB, nullable=False),
)

# The older editions of the map (migration 0017, common/db/editions.py): the
# API serves aggregates on them (millesime) from the observations.
editions = Table(
    "editions",
    metadata,
    Column("millesime", SmallInteger, primary_key=True),
    Column("version", Text, nullable=False),
    Column("communes_total", Integer, nullable=False),
)

edition_communes = Table(
    "edition_communes",
    metadata,
    Column("millesime", SmallInteger, primary_key=True),
    Column("code", String(5), primary_key=True),
    Column("nom", Text, nullable=False),
    Column("departement", String(3), nullable=False),
    Column("region", String(3), nullable=False),
    Column("epci", String(9)),
    Column("population", Integer),
)

edition_territories = Table(
    "edition_territories",
    metadata,
    Column("millesime", SmallInteger, primary_key=True),
    Column("niveau", String(12), primary_key=True),
    Column("code", String(9), primary_key=True),
    Column("nom", Text, nullable=False),
    Column("communes_total", Integer, nullable=False),
)

edition_passage = Table(
    "edition_passage",
    metadata,
    Column("millesime", SmallInteger, primary_key=True),
    Column("code", String(5), primary_key=True),
    Column("cle", SmallInteger, primary_key=True),
    Column("commune", String(5), primary_key=True),
    Column("part", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
)

former_codes = Table(
    "former_codes",
    metadata,
    Column("ancien", String(5), primary_key=True),
    Column("actuel", String(5), nullable=False),
)

referential_meta = Table(
    "referential_meta",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Text, nullable=False),
    Column("loaded_at", DateTime(timezone=True), server_default=func.now()),
    # The version the stored values are placed on (migration 0019): behind
    # ``version`` until the aggregator places them again.
    Column("placed_version", Text),
    # The edition's year (migration 0022): above the shipped one when
    # `itte referentiel charger` loaded a later one (its files below).
    Column("millesime", SmallInteger),
)

# The files of each edition loaded by `itte referentiel charger`
# (common/referential.FILES): the services read the current edition from
# here when it is not the one their release ships.
referential_files = Table(
    "referential_files",
    metadata,
    Column("millesime", SmallInteger, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("content", LargeBinary, nullable=False),
)

observations = Table(
    "observations",
    metadata,
    Column("indicateur", Text, primary_key=True),
    Column("sous_champ", Text, primary_key=True),
    Column("annee", Integer, primary_key=True),
    Column("commune_source", String(5), primary_key=True),
    Column("commune", String(5), nullable=False),
    Column("valeur", Numeric),
    Column("marqueur", Text),
    Column("unite", Text),
    Column("libelle_indicateur", Text),
    Column("libelle_sous_champ", Text),
    Column("version", BigInteger, nullable=False),
    Column("version_explicite", Boolean, nullable=False, server_default=text("false")),
    Column("recu", BigInteger, nullable=False, server_default="0"),
    Column("record_id", Text, nullable=False),
    Column("pii", JSONB),
    Column("pii_key_id", Text),
    Column("producteur", Text),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

aggregates = Table(
    "aggregates",
    metadata,
    Column("indicateur", Text, primary_key=True),
    Column("sous_champ", Text, primary_key=True),
    Column("annee", Integer, primary_key=True),
    Column("niveau", String(12), primary_key=True),
    Column("code", String(9), primary_key=True),
    Column("valeur", Numeric, nullable=False),
    # Values present below this aggregate: source observations at commune
    # level, reporting communes above it.
    Column("nb_valeurs", Integer, nullable=False),
    Column("unite", Text),
    # Pair sums (ratio, moyenne_ponderee): over communes where both are present.
    Column("numerateur", Numeric, nullable=False, server_default="0"),
    Column("denominateur", Numeric, nullable=False, server_default="0"),
    Column("revision", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    # Its place in the change feed, taken when its change commits (0009): the
    # outbox relay publishes the rows numbered after its cursor. Read through
    # aggregate_change_log (0010): unindexed here, so that a change is a
    # heap-only update, with room for it on the page (fillfactor).
    Column("change_seq", BigInteger),
    # The number the last change replaced, whose log entry it deleted (logged).
    Column("previous_seq", BigInteger),
    # A value published for the territory itself (published_values, 0014):
    # served beside the aggregated one, never added into anything.
    Column("valeur_publiee", Numeric),
    Column("publiee", Boolean, nullable=False, server_default=text("false")),
    # A département's: the sum of the values published for its EPCIs, when
    # they lie wholly within it and hold every one of its communes (0015).
    Column("valeur_epci", Numeric),
    Column("epci_renseignes", Integer, nullable=False, server_default="0"),
    Column("epci_total", Integer, nullable=False, server_default="0"),
    # A ratio's paired communes whose denominator is of an earlier year: how
    # many, the sum of their years back and of their squares (0021).
    Column("replis", Integer, nullable=False, server_default="0"),
    Column("repli_annees", BigInteger, nullable=False, server_default="0"),
    Column("repli_carres", BigInteger, nullable=False, server_default="0"),
    Index("aggregates_by_territory", "niveau", "code"),
    postgresql_with={"fillfactor": 70},
)

# Values published for a territory above the commune (migration 0014), under
# the observations' version rule; the aggregates row of the territory holds
# the winning one as valeur_publiee.
published_values = Table(
    "published_values",
    metadata,
    Column("indicateur", Text, primary_key=True),
    Column("sous_champ", Text, primary_key=True),
    Column("annee", Integer, primary_key=True),
    Column("niveau", String(12), primary_key=True),
    Column("code", String(9), primary_key=True),
    Column("valeur", Numeric),
    Column("marqueur", Text),
    Column("unite", Text),
    Column("libelle_indicateur", Text),
    Column("libelle_sous_champ", Text),
    Column("version", BigInteger, nullable=False),
    Column("version_explicite", Boolean, nullable=False, server_default=text("false")),
    Column("recu", BigInteger, nullable=False, server_default="0"),
    Column("record_id", Text, nullable=False),
    Column("pii", JSONB),
    Column("pii_key_id", Text),
    Column("producteur", Text),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

# One entry for each numbered aggregate, by number: how the relay and the
# change feed find the rows changed after a cursor (migration 0010).
aggregate_change_log = Table(
    "aggregate_change_log",
    metadata,
    Column("change_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("indicateur", Text, nullable=False),
    Column("sous_champ", Text, nullable=False),
    Column("annee", Integer, nullable=False),
    Column("niveau", String(12), nullable=False),
    Column("code", String(9), nullable=False),
)

# How far each relay has published the change feed (migration 0009).
outbox_cursor = Table(
    "outbox_cursor",
    metadata,
    Column("relay", Text, primary_key=True),
    Column("published_seq", BigInteger, nullable=False),
)

indicators = Table(
    "indicators",
    metadata,
    Column("id", Text, primary_key=True),
    Column("libelle", Text, nullable=False),
    Column("unite", Text),
    Column("description", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("min", Numeric),
    Column("max", Numeric),
    Column("agregation", Text, nullable=False),
    Column("numerateur", Text),
    Column("denominateur", Text),
    Column("facteur", Numeric, nullable=False),
    Column("poids", Text),
    Column("sens", Text),
    Column("sous_champs", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("alias_sous_champs", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("priorite", Text, nullable=False, server_default=text("'publiee'")),
    Column("somme_epci", Boolean, nullable=False, server_default=text("false")),
    Column("repli_denominateur", Integer, nullable=False, server_default="0"),
)

# National objectives from the catalogue (migration 0008).
objectives = Table(
    "objectives",
    metadata,
    Column("indicateur", Text, primary_key=True),
    Column("sous_champ", Text, primary_key=True),
    Column("annee", Integer, primary_key=True),
    Column("valeur", Numeric, nullable=False),
    Column("echelle", Text, nullable=False),
    Column("libelle", Text, nullable=False),
    Column("source", Text, nullable=False),
    # The path to it (migration 0020).
    Column("annee_reference", Integer),
    Column("valeur_reference", Numeric),
    Column("trajectoire", Text, nullable=False, server_default=text("'lineaire'")),
    Column("tolerance", Numeric, nullable=False, server_default=text("0.02")),
    Column("niveau", Text, primary_key=True, server_default=text("'france'")),
    Column("code", Text, primary_key=True, server_default=text("'FR'")),
)

ingest_requests = Table(
    "ingest_requests",
    metadata,
    Column("producer", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("body_sha256", Text, nullable=False),
    Column("status", Integer),
    Column("response", JSONB),
    Column("claimed_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Index("ingest_requests_claimed_at", "claimed_at"),  # to forget expired keys
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("record_id", Text, primary_key=True),
    Column("batch_id", Text, index=False),
    Column("position", Integer),
    Column("stage", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("payload", JSONB),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("dead_letters_by_batch", "batch_id"),
)

# What became of each batch pushed over HTTP (migration 0005): the ingestor's
# record of it, and the aggregator's bit per record in the results.
ingest_batches = Table(
    "ingest_batches",
    metadata,
    Column("batch_id", Text, primary_key=True),
    Column("producer", Text, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("lines", ARRAY(Integer)),
    Column("refused", JSONB, nullable=False, server_default=text("'[]'")),
    Column("received_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Index("ingest_batches_received_at", "received_at"),
)

batch_progress = Table(
    "batch_progress",
    metadata,
    Column("batch_id", Text, primary_key=True),
    Column("clean", BIT(varying=True), nullable=False),
)

# Each hand-over of observations between producers (migration 0012,
# ``itte proprietaire``), kept for the operators.
ownership_transfers = Table(
    "ownership_transfers",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("indicateur", Text, nullable=False),
    Column("annee", Integer),
    Column("niveau", Text),
    Column("code", Text),
    Column("ancien", Text),
    Column("nouveau", Text),
    Column("observations", Integer, nullable=False),
)

# The view of what readers see (each aggregate with its territory and its
# value by its indicator's rule), described for SQLAlchemy queries; the
# migrations create it, hence its own MetaData.
aggregate_values = Table(
    "aggregate_values",
    MetaData(),
    *(
        Column(name, Text)
        for name in ("indicateur", "sous_champ", "niveau", "code", "nom", "agregation", "unite")
    ),
    Column("annee", Integer),
    Column("valeur", Numeric),
    Column("communes_renseignees", Integer),
    Column("communes_total", Integer),
    Column("revision", BigInteger),
    Column("updated_at", DateTime(timezone=True)),
    Column("change_seq", BigInteger),
    Column("origine", Text),
    Column("valeur_publiee", Numeric),
    Column("annee_denominateur", Integer),
    Column("communes_repli", Integer),
)
