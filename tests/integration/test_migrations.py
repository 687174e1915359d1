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
from sqlalchemy import Engine, text

from common import catalogue, db, migrations
from common.embedded import Servers
from common.referential import load
from schemas.clean import CleanObservation
from services.aggregator.rules import AggregationRules
from services.aggregator.store import AggregateStore
from services.aggregator.verify import check
from tests.conftest import TEST_CATALOGUE, with_database

SCHEMA_0_1_0 = Path(__file__).parents[1] / "data" / "schema_0.1.0.sql"


@pytest.fixture
def empty_database(servers: Servers) -> Callable[[], str]:
    def create() -> str:
        name = f"itte_migrate_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(servers.database_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return with_database(servers.database_url, name)

    return create


def differences(engine: Engine) -> list:
    """What autogenerate would change to make the database match common/db.py."""
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
    rules = AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))
    with closing(AggregateStore(url, load(), rules)) as store:  # as 0.1.0 wrote them
        store.apply([obs("33063", "7", rid="old")])
    engine = db.make_engine(url)
    with pytest.raises(migrations.SchemaNotReady, match="itte migrate"):
        migrations.require_current(engine)

    migrations.upgrade(engine)
    db.load_catalogue(engine, catalogue.load(TEST_CATALOGUE))

    assert differences(engine) == []
    migrations.require_current(engine)
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT valeur, record_id FROM observations")).one()
    assert (kept.valeur, kept.record_id) == (Decimal(7), "old")
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


def test_head_names_the_newest_migration() -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations.SCRIPTS))
    assert ScriptDirectory.from_config(config).get_current_head() == migrations.HEAD


def test_a_service_refuses_a_database_that_was_never_migrated(
    empty_database: Callable[[], str],
) -> None:
    engine = db.make_engine(empty_database())
    with pytest.raises(migrations.SchemaNotReady, match=r"revision none.*itte migrate"):
        migrations.require_current(engine)
