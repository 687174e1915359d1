"""Least privilege: each service's role can do its work and nothing more."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from urllib.parse import quote

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from common import catalogue, db, migrations
from common.referential import load
from schemas.clean import CleanObservation
from services.aggregator.placement import bring_onto
from services.aggregator.rules import AggregationRules
from services.aggregator.store import AggregateStore
from services.aggregator.verify import check
from services.api.app import read_only_engine
from services.ingestor.idempotency import IdempotencyStore
from tests.conftest import TEST_CATALOGUE
from tests.editions import next_edition


def as_role(url: str, role: str) -> str:
    """The same database, the session under ``role`` (libpq options)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-c role={role}')}"


def as_login(url: str, login: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{login}:{quote(password)}@{rest.split('@', 1)[1]}"


def refused(url: str, statement: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_the_api_role_reads_what_it_serves_and_writes_nothing(database_url: str) -> None:
    url = as_role(database_url, "itte_reader")
    with psycopg.connect(url) as conn:
        conn.execute("SELECT * FROM aggregate_values LIMIT 1")
        conn.execute("SELECT * FROM indicators, referential_meta LIMIT 1")
    assert refused(url, "SELECT * FROM observations LIMIT 1")  # hashed personal fields
    assert refused(url, "SELECT * FROM ingest_requests LIMIT 1")
    assert refused(url, "DELETE FROM aggregates")
    assert refused(url, "CREATE TABLE intruder (x int)")


def test_a_write_through_the_apis_own_connection_is_refused(database_url: str) -> None:
    engine = db.make_engine(database_url)
    migrations.grant_logins(engine, {"itte_api": "api-test-password"})
    api = read_only_engine(as_login(database_url, "itte_api", "api-test-password"), 1)
    with api.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == "itte_api"
        # Even with the session's read-only default lifted, the role cannot write.
        conn.execute(text("SET default_transaction_read_only = off"))
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("UPDATE indicators SET libelle = 'x'"))
    api.dispose()
    migrations.grant_logins(engine, {"itte_api": "another-password"})  # again: updated


def test_the_ingestor_role_touches_only_its_table(database_url: str) -> None:
    url = as_role(database_url, "itte_ingest")
    keys = IdempotencyStore(url)
    assert keys.claim("ademe", "k", b"{}") is None
    keys.complete("ademe", "k", 202, {"accepted": 1})
    assert keys.claim("ademe", "k", b"{}") is not None
    assert refused(url, "SELECT * FROM observations LIMIT 1")
    assert refused(url, "UPDATE aggregates SET valeur = 0")


def test_the_aggregator_role_aggregates_but_cannot_read_idempotency_keys(
    database_url: str, obs: Callable[..., CleanObservation]
) -> None:
    url = as_role(database_url, "itte_writer")
    db.load_catalogue(db.make_engine(url), catalogue.load(TEST_CATALOGUE))
    rules = AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))
    with closing(AggregateStore(url, load(), rules)) as store:
        result = store.apply([obs("33063", "5"), obs("33001", "3"), obs("33063", "2", 2)])
    assert result.written == 2
    assert check(database_url).differences == []
    assert refused(url, "SELECT * FROM ingest_requests LIMIT 1")
    assert refused(url, "DELETE FROM communes")


def test_the_monitor_login_reads_postgres_statistics_and_no_table_of_itte(
    database_url: str,
) -> None:
    """The Postgres exporter's login (docker-compose.yml)."""
    engine = db.make_engine(database_url)
    migrations.grant_logins(engine, {"itte_monitor": "monitor-test-password"})
    url = as_login(database_url, "itte_monitor", "monitor-test-password")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_stat_activity").fetchone()
        assert conn.execute("SELECT pg_database_size(current_database())").fetchone()
    for table in ("aggregates", "observations", "ingest_requests", "indicators"):
        assert refused(url, f"SELECT * FROM {table} LIMIT 1"), table
    engine.dispose()


def test_the_aggregator_role_places_the_stored_values_on_a_new_edition(
    database_url: str, obs: Callable[..., CleanObservation]
) -> None:
    """What an aggregator does at its start after `itte migrate` loaded a
    release's new edition, under its own login: values move, one leaves as a
    dead letter, a grouping follows its communes."""
    edition, c = next_edition()
    rules = AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))
    store = AggregateStore(database_url, load(), rules)
    store.apply(
        [
            obs(c["merged"], "5", annee=2026, rid="m"),
            obs(c["keep"], "5", annee=2026, rid="k"),
            obs(c["merged"], "7", indicateur="tmax", annee=2026, rid="t"),  # a max: no merge
        ]
    )
    store.close()
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO groupements (code, nom, communes_total) VALUES ('g', 'G', 2)")
        conn.execute(
            "INSERT INTO groupement_communes VALUES ('g', %s), ('g', %s)", (c["keep"], c["merged"])
        )
    engine = db.make_engine(database_url)
    with engine.begin() as conn:  # `itte migrate` of the next release
        db.load_referential(conn, edition)
    engine.dispose()
    placed = bring_onto(as_role(database_url, "itte_writer"), edition)
    assert placed is not None and placed.counts["dead_letters"] == 1
    assert placed.counts["grouping_counted"] == 1
    assert check(database_url).differences == []
