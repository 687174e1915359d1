"""The migrations own the schema: they build what the code declares, upgrade
a database that itte 0.1.0's services set up themselves, and the services
refuse a database that is not at their revision."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from common import catalogue, db, migrations
from common.referential import ancestors, load
from common.servers import Servers
from schemas.clean import CleanObservation
from services.aggregator.rules import AggregationRules
from services.aggregator.store import AggregateStore
from services.aggregator.verify import check
from tests.conftest import TEST_CATALOGUE

SCHEMA_0_1_0 = Path(__file__).parents[1] / "data" / "schema_0.1.0.sql"


@pytest.fixture
def empty_database(servers: Servers) -> Callable[[], str]:
    def create() -> str:
        return db.create_database(servers.database_url, f"itte_migrate_{uuid.uuid4().hex[:10]}")

    return create


def differences(engine: Engine) -> list:
    """What autogenerate would change to make the database match common/db/tables.py."""
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), db.metadata))


def test_a_fresh_database_gets_exactly_the_tables_the_code_declares(
    empty_database: Callable[[], str],
) -> None:
    engine = db.make_engine(empty_database())
    migrations.upgrade(engine)
    assert differences(engine) == []
    with engine.connect() as conn:
        assert migrations.current(conn) == migrations.HEAD
        assert conn.execute(text("SELECT count(*) FROM communes")).scalar() == len(load().communes)
        assert conn.execute(text("SELECT count(*) FROM aggregate_values")).scalar() == 0
    migrations.upgrade(engine)  # again: nothing to do, nothing breaks
    migrations.require_current(engine)


def test_a_database_of_itte_0_1_0_upgrades_and_keeps_its_data(
    empty_database: Callable[[], str], obs: Callable[..., CleanObservation]
) -> None:
    url = empty_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA_0_1_0.read_text())
    # As 0.1.0 wrote them: an observation and the aggregates above it, not yet published.
    levels = [("commune", "33063"), *ancestors(load())["33063"]]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO observations (indicateur, sous_champ, annee, commune_source, commune,"
            " valeur, unite, version, record_id) VALUES ('pop', 'total', 2024, '33063', '33063', 7,"
            " 'u', 1, 'old')"
        )
        for niveau, code in levels:
            conn.execute(
                "INSERT INTO aggregates (indicateur, sous_champ, annee, niveau, code, valeur,"
                " nb_valeurs, unite, revision) VALUES ('pop', 'total', 2024, %s, %s, 7, 1, 'u', 1)",
                (niveau, code),
            )
    engine = db.make_engine(url)
    with pytest.raises(migrations.SchemaNotReady, match="itte migrate"):
        migrations.require_current(engine)

    migrations.upgrade(engine)
    db.load_catalogue(engine, catalogue.load(TEST_CATALOGUE))

    assert differences(engine) == []
    migrations.require_current(engine)
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT valeur, record_id FROM observations")).one()
        # What waited for the relay is numbered after its cursor: published once.
        cursor = conn.execute(text("SELECT published_seq FROM outbox_cursor")).scalar_one()
        pending = conn.execute(
            text("SELECT count(*) FROM aggregates WHERE change_seq > :c"), {"c": cursor}
        ).scalar_one()
    assert (kept.valeur, kept.record_id) == (Decimal(7), "old")
    assert pending == len(levels)
    rules = AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))
    # The upgraded database works for the services: a correction of the old
    # observation moves every aggregate above it, as a recomputation finds.
    with closing(AggregateStore(url, load(), rules)) as store:
        store.apply([obs("33063", "5", 2), obs("33001", "3")])
    with engine.connect() as conn:
        france = conn.execute(
            text("SELECT valeur FROM aggregates WHERE niveau = 'france' AND indicateur = 'pop'")
        ).scalar()
    assert france == Decimal(8)
    report = check(url)
    assert report.checked > 0 and report.differences == []


def alembic_config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations.SCRIPTS))
    config.attributes["connection"] = conn
    return config


def test_head_names_the_newest_migration() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == migrations.HEAD


def test_a_service_refuses_a_database_that_was_never_migrated(
    empty_database: Callable[[], str],
) -> None:
    engine = db.make_engine(empty_database())
    with pytest.raises(migrations.SchemaNotReady, match=r"revision none.*itte migrate"):
        migrations.require_current(engine)


def test_numbering_at_commit_goes_back_and_forth_keeping_what_waits_for_the_relay(
    empty_database: Callable[[], str], obs: Callable[..., CleanObservation]
) -> None:
    """0009 down then up: what the relay had published stays published, what
    waited for it waits again (and is numbered after the cursor)."""
    from alembic import command

    url = empty_database()
    engine = db.make_engine(url)
    migrations.upgrade(engine)
    db.load_catalogue(engine, catalogue.load(TEST_CATALOGUE))
    rules = AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))
    with closing(AggregateStore(url, load(), rules)) as store:
        store.apply([obs("33063", "7")])
        with psycopg.connect(url, autocommit=True) as conn:  # as if the relay had published it
            conn.execute(
                "UPDATE outbox_cursor SET published_seq = (SELECT max(change_seq) FROM aggregates)"
            )
        store.apply([obs("33281", "2")])  # Mérignac: its rows, and above it those of Bordeaux

    def waiting() -> set[tuple[str, str]]:
        with psycopg.connect(url) as conn:
            return set(
                conn.execute(
                    "SELECT niveau, code FROM aggregates WHERE change_seq > "
                    "(SELECT published_seq FROM outbox_cursor)"
                ).fetchall()
            )

    before = waiting()
    assert before == {("commune", "33281"), *ancestors(load())["33281"]}
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0008")
        pending = conn.execute(
            text("SELECT niveau, code FROM aggregates WHERE revision > published_revision")
        ).fetchall()
    assert set(pending) == before
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    assert waiting() == before
    assert differences(engine) == []
