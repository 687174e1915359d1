"""What the README promises a new user: `itte up` (run by `make up`) serves EPCI
populations equal to the sums of their member communes, with a Prometheus
scraping the services, restarts a service that dies, and Ctrl-C stops all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from common.embedded import free_port
from common.referential import load
from itte.processes import SERVICES
from tests.e2e.stack import eventually, get_json


def test_up_serves_demo_populations_then_stops_everything(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("API", "INGESTOR", "CLEANER", "AGGREGATOR")}
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env |= {f"ITTE_{name}_PORT": str(port) for name, port in ports.items()}
    prometheus = free_port()
    env["ITTE_PROMETHEUS_PORT"] = str(prometheus)
    env["ITTE_STATE_DIR"] = str(tmp_path / "state")
    up = subprocess.Popen(
        [sys.executable, "-m", "itte", "up"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    expected: dict[str, int] = defaultdict(int)
    for commune in load().communes.values():
        if commune.epci and commune.population is not None:
            expected[commune.epci] += commune.population
    in_74 = {c.epci for c in load().communes.values() if c.departement == "74" and c.epci}
    url = (
        f"http://127.0.0.1:{ports['API']}/indicateurs?niveau=epci&departement=74"
        "&indicateur=population"
    )
    try:

        def figures() -> dict[str, int] | None:
            got = {r["code"]: r["valeur"] for r in get_json(url)}
            return got if got == {e: expected[e] for e in in_74} else None

        eventually(figures, 180, "EPCI populations of Haute-Savoie")

        def scraped() -> bool:
            targets = get_json(f"http://127.0.0.1:{prometheus}/api/v1/targets")
            health = {t["labels"]["job"]: t["health"] for t in targets["data"]["activeTargets"]}
            return health == {f"itte-{name}": "up" for name in SERVICES}

        eventually(scraped, 60, "Prometheus to scrape the four services")

        # A service that dies is restarted, the others run on.
        def cleaner_pid() -> int | None:
            found = subprocess.run(
                ["pgrep", "-P", str(up.pid), "-f", "itte cleaner"], capture_output=True, text=True
            ).stdout.split()
            return int(found[0]) if found else None

        killed = cleaner_pid()
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        eventually(lambda: cleaner_pid() not in (None, killed), 30, "the cleaner to be restarted")
        cleaner = f"http://127.0.0.1:{ports['CLEANER']}/readyz"
        eventually(lambda: get_json(cleaner)["status"] == "ok", 120, "the cleaner to be ready")
        broker_pid = json.loads((tmp_path / "state" / "broker.json").read_text())["pid"]
    finally:
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    assert "itte is up" in output and "stopping..." in output
    assert f"http://127.0.0.1:{prometheus}/alerts" in output
    assert "cleaner exited with -9; restarting in" in output
    assert "cleaner restarted (1 restart(s) so far)" in output
    # Postgres has the state folder on its command line; `up` waits for its services.
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "processes left running after Ctrl-C"
    assert not Path(f"/proc/{broker_pid}").exists() or _zombie(broker_pid), "broker left running"


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
