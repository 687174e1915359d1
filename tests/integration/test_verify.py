from __future__ import annotations

import subprocess
import sys

import psycopg

from services.aggregator.verify import check, rebuild
from tests.integration.test_change_numbers import assert_log_matches


def test_check_finds_nothing_after_corrections_and_secret_cells(store, obs, database_url):
    store.apply([obs("33063", "5"), obs("74010", None), obs("01015", "2", source="01340")])
    store.apply([obs("33063", "7", 2), obs("74010", "3", 2), obs("01015", "1", rid="z")])
    report = check(database_url)
    assert report.checked > 10
    assert report.differences == []


def test_rebuild_repairs_a_corrupted_aggregate_and_republishes_it(store, obs, database_url):
    store.apply([obs("33063", "5"), obs("33081", "2")])
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE aggregates SET valeur = valeur + 1 WHERE niveau = 'france'")
        conn.execute("DELETE FROM aggregates WHERE niveau = 'region'")
    [(key, running, truth), (key2, missing, truth2)] = sorted(check(database_url).differences)
    assert key[3] == "france" and running[:2] == (8, 2) and truth[:2] == (7, 2)
    assert key2[3] == "region" and missing is None and truth2[:2] == (7, 2)

    with psycopg.connect(database_url) as conn:  # a row no observation makes, logged
        conn.execute(
            "WITH bogus AS (INSERT INTO aggregates (indicateur, sous_champ, annee, niveau, code,"
            " valeur, nb_valeurs, revision, change_seq) SELECT indicateur, sous_champ, annee,"
            " 'departement', '75', 1, 1, 1, nextval('aggregate_changes') FROM aggregates"
            " WHERE niveau = 'france' RETURNING *)"
            " INSERT INTO aggregate_change_log SELECT change_seq, indicateur, sous_champ, annee,"
            " niveau, code FROM bogus"
        )

    assert rebuild(database_url) == {
        "updated": 1,
        "inserted": 1,
        "published": 0,
        "published_inserted": 0,
        "unpublished": 0,
        "epci_sums": 0,
        "epci_sums_inserted": 0,
        "epci_sums_cleared": 0,
        "emptied": 1,
    }
    assert check(database_url).differences == []
    with psycopg.connect(database_url) as conn:
        numbered = conn.execute(
            "SELECT niveau, revision, change_seq > (SELECT max(change_seq) FROM aggregates"
            "  WHERE niveau = 'commune') FROM aggregates WHERE niveau IN ('france', 'region')"
        ).fetchall()
    # Repaired rows take the next numbers: the relay publishes them, the feed shows them.
    assert sorted(numbered) == [("france", 2, True), ("region", 1, True)]
    # The entries of the rows deleted, by hand and by the rebuild, went with them.
    assert_log_matches(database_url)


def test_check_command_exits_1_on_a_difference(store, obs, database_url):
    store.apply([obs("33063", "5")])
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "itte", "check"]
    ok = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "0 differences" in ok.stdout
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE aggregates SET nb_valeurs = 9 WHERE niveau = 'departement'")
    bad = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "1 differences" in bad.stdout and "departement|33" in bad.stdout
    # Each side's fields by name.
    assert "running (valeur=5 nb_valeurs=9 numerateur=0 denominateur=0 replis=0" in bad.stdout
    assert "recomputed (valeur=5 nb_valeurs=1 " in bad.stdout
