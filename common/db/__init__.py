"""The database, one job per module:

- ``tables``: the tables and the readers' view, as SQLAlchemy sees them;
- ``changes``: the change feed's rules (numbering, logging, the lock, the channel);
- ``postgres``: URLs, new databases, engines, connections, array parameters;
- ``reference``: loading the catalogue and the referential.

Their names are here too, so that ``from common import db`` reads ``db.logged``,
``db.make_engine``, ``db.aggregates`` wherever a module uses several of them."""

from common.db.changes import (
    AGGREGATE_KEY,
    AGGREGATE_KEY_COLUMNS,
    ANNOUNCE,
    ANNOUNCING,
    CHANGES_CHANNEL,
    NEXT_CHANGE,
    NUMBERING_LOCK,
    RENUMBER,
    RENUMBER_UPSERTED,
    announcements,
    key_of,
    logged,
    same_change,
)
from common.db.postgres import (
    KeptConnection,
    array_literal,
    create_database,
    make_engine,
    sqlalchemy_url,
    usable,
    with_database,
)
from common.db.reference import CATALOGUE_LOCK, load_catalogue, load_referential
from common.db.tables import (
    aggregate_change_log,
    aggregate_values,
    aggregates,
    batch_progress,
    communes,
    dead_letters,
    former_codes,
    indicators,
    ingest_batches,
    ingest_requests,
    metadata,
    objectives,
    observations,
    outbox_cursor,
    published_values,
    referential_meta,
    territories,
)

__all__ = [
    "AGGREGATE_KEY",
    "AGGREGATE_KEY_COLUMNS",
    "ANNOUNCE",
    "ANNOUNCING",
    "CATALOGUE_LOCK",
    "CHANGES_CHANNEL",
    "NEXT_CHANGE",
    "NUMBERING_LOCK",
    "RENUMBER",
    "RENUMBER_UPSERTED",
    "KeptConnection",
    "aggregate_change_log",
    "aggregate_values",
    "aggregates",
    "announcements",
    "array_literal",
    "batch_progress",
    "communes",
    "create_database",
    "dead_letters",
    "former_codes",
    "indicators",
    "ingest_batches",
    "ingest_requests",
    "key_of",
    "load_catalogue",
    "load_referential",
    "logged",
    "make_engine",
    "metadata",
    "objectives",
    "observations",
    "outbox_cursor",
    "published_values",
    "referential_meta",
    "same_change",
    "sqlalchemy_url",
    "territories",
    "usable",
    "with_database",
]
