"""`itte referentiel`: an edition read from the registry package as the
shipped ones were built (byte for byte), a charge killed at any moment
leaving the database as it was, and the command's refusals, each with its
reason and nothing changed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from common import referential
from common.referential import registry
from common.servers import Servers
from services.aggregator.charge import charge
from tests.editions import files_of, next_edition
from tests.integration.test_charge import held
from tests.integration.test_placement import aggregates

EDITION, C = next_edition()


@pytest.mark.parametrize(("year", "version"), [(2019, "0.7.0"), (2026, "6.0.0")])
def test_the_registry_package_gives_the_shipped_edition_byte_for_byte(
    year: int, version: str
) -> None:
    """The npm registry is reachable from where the tests run (README)."""
    built = registry.edition_files(registry.fetch(version), version)
    assert built == referential.shipped_files(year)


def itte(servers: Servers, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": servers.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap_servers,
    }
    return subprocess.run(
        [sys.executable, "-m", "itte", *args], env=env, capture_output=True, text=True, timeout=120
    )


def state(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        files = conn.execute("SELECT count(*) FROM referential_files").fetchone()
        years = conn.execute("SELECT array_agg(millesime ORDER BY 1) FROM editions").fetchone()
        passage = conn.execute("SELECT count(*) FROM edition_passage").fetchone()
        mapped = conn.execute("SELECT count(*), max(nom) FROM communes").fetchone()
    return held(url), files, years, passage, mapped, aggregates(url)


def test_the_command_refuses_what_it_cannot_load_and_changes_nothing(
    servers: Servers, database_url: str, tmp_path: Path
) -> None:
    shipped_folder = tmp_path / "shipped"
    assert itte(servers, "referentiel", "exporter", "2026", str(shipped_folder)).returncode == 0
    broken = tmp_path / "broken"
    broken.mkdir()
    for name, content in files_of(EDITION).items():
        if name != "epci.csv.gz":
            (broken / name).write_bytes(content)
    served = Servers(servers.kafka_bootstrap_servers, database_url)
    before = state(database_url)
    for args, status, reason in (
        (["2027"], 2, "give FICHIER or --paquet"),
        (["2027", str(broken)], 1, "epci.csv.gz is missing"),
        (["2026", str(shipped_folder)], 1, "the edition 2026 ships with this release"),
        (["2026", "--paquet", "6.0.0"], 1, "the edition 2026 ships with this release"),
        (["2027", "--paquet", "0.0.999"], 1, "@etalab/decoupage-administratif@0.0.999"),
        (["2027", "--paquet", "6.0.0", "--registre", "file:///etc"], 1, "an http(s) address"),
    ):
        done = itte(served, "referentiel", "charger", *args)
        assert (done.returncode, reason in done.stderr) == (status, True), done.stderr
    assert state(database_url) == before


KILLED = textwrap.dedent(
    """
    import sys
    from services.aggregator.charge import charge
    from tests.editions import files_of, next_edition
    edition, _ = next_edition()
    charge(sys.argv[1], edition, files_of(edition))
    """
)
# The charge's two long steps, as another session sees them: loading the
# editions under `itte migrate`'s lock (about 5 s), then, with the
# database's edition taken for update, switching the map (about 1 s).
PHASES = {
    "loading": "locktype = 'advisory' AND objid = 7277410",
    "switching": "relation = 'referential_meta'::regclass AND mode = 'RowShareLock'",
}


def holds(url: str, phase: str) -> bool:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            f"SELECT count(*) FROM pg_locks WHERE granted AND pid <> pg_backend_pid()"
            f" AND {PHASES[phase]}"
        ).fetchone()
    return bool(found and found[0])


def test_a_charge_killed_midway_leaves_the_database_as_it_was(
    store, obs, database_url: str
) -> None:
    """Killed once the map is switching (the files kept, the editions
    loaded, the communes replaced in its transaction): all of it undone."""
    phase = "switching"
    store.apply([obs(C["a"], "3", annee=2026, rid="a"), obs(C["keep"], "5", annee=2026, rid="k")])
    before = state(database_url)
    loading = subprocess.Popen([sys.executable, "-c", KILLED, database_url])
    deadline = time.monotonic() + 60
    while not holds(database_url, phase) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert loading.poll() is None, f"the charge ended before it was seen {phase}"
    os.kill(loading.pid, signal.SIGKILL)
    loading.wait()
    deadline = time.monotonic() + 30  # Postgres rolls back once it sees the client gone
    while holds(database_url, "loading") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state(database_url) == before
    assert charge(database_url, EDITION, files_of(EDITION)).placed is not None  # run again
    assert held(database_url) == (2027, "test-2027", "test-2027")
