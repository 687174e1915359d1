"""With ITTE_ENVIRONMENT=production no embedded server ever starts: a missing
address is a clear error before anything is read or published."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.servers import NotConfigured, Servers
from common.settings import CommonSettings
from itte.embedded import embedded_in, servers_for


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


@pytest.mark.parametrize(
    ("command", "missing"),
    [(["ingest", "FILE"], "KAFKA_BOOTSTRAP_SERVERS"), (["migrate"], "DATABASE_URL")],
)
def test_the_command_refuses_to_start_a_toy_server_in_production(
    tmp_path: Path, command: list[str], missing: str
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("indicateur,commune,annee,valeur\npop,33063,2024,1\n")
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env |= {"ITTE_ENVIRONMENT": "production", "ITTE_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(
        [sys.executable, "-m", "itte", *[str(data) if c == "FILE" else c for c in command]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert f"{missing} is not set" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "state" / "broker.json").exists()
    assert not (tmp_path / "state" / "pgdata").exists()
