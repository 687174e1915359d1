"""What the README promises a new user: `itte up` (run by `make up`) serves EPCI
populations equal to the sums of their member communes, with a Prometheus
scraping the services, restarts a service that dies, and Ctrl-C stops all,
even when started with SIGINT ignored (a shell's `&`, nohup, a CI runner).
SIGTERM stops all too; what an `itte up` killed by SIGKILL left is stopped
by the next one, which refuses to run beside another."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from urllib.request import urlopen

import psutil
import pytest

from common.referential import load
from itte import demo
from itte.embedded import free_port, stop_embedded
from itte.processes import SERVICES
from tests.e2e.stack import eventually, get_json


def up_environment(tmp_path: Path) -> tuple[dict[str, str], dict[str, int]]:
    """Embedded servers in ``tmp_path``, free ports: the services' and
    Prometheus'. No environment named, as `make up` runs: `itte up` alone
    makes it a local run."""
    ports = {name: free_port() for name in ("API", "INGESTOR", "CLEANER", "AGGREGATOR")}
    ports["PROMETHEUS"] = free_port()
    unset = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "ITTE_ENVIRONMENT")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env |= {f"ITTE_{name}_PORT": str(port) for name, port in ports.items()}
    env["ITTE_STATE_DIR"] = str(tmp_path / "state")
    return env, ports


def start_up(
    tmp_path: Path, env: dict[str, str], *args: str, sigint_ignored: bool = False
) -> subprocess.Popen[str]:
    def ignore_sigint() -> None:  # as `cmd &` in a non-interactive shell leaves it
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen(
        [sys.executable, "-m", "itte", "up", *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=ignore_sigint if sigint_ignored else None,
    )


def itte(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """An ``itte`` command run to its end (bounded), its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "itte", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def running(pids: list[int]) -> list[int]:
    """Those still running (a zombie has ended; its parent will reap it)."""
    alive = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
    return alive


def started_by_up(pid: int) -> bool:
    """A service (``python -m itte <service>``) or Prometheus."""
    try:
        command = psutil.Process(pid).cmdline()
    except psutil.NoSuchProcess:
        return False
    return command[1:3] == ["-m", "itte"] or Path(command[0]).name == "prometheus"


def assert_nothing_left(tmp_path: Path, started: list[int]) -> None:
    assert running(started) == [], "processes left running after the stop"
    # Postgres (pg_ctl detaches it) has the state folder on its command line.
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "processes left running after the stop"


@pytest.fixture
def reaper(tmp_path: Path) -> Iterator[list[int]]:
    """Pids to kill once the test is over, whatever it asserted: a failure
    must not leave a pipeline running under the next tests."""
    pids: list[int] = []
    yield pids
    for pid in running(pids):
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
    with contextlib.suppress(Exception):
        stop_embedded(tmp_path / "state")


def test_up_serves_demo_populations_then_ctrl_c_stops_everything(
    tmp_path: Path, reaper: list[int]
) -> None:
    env, ports = up_environment(tmp_path)
    prometheus = ports["PROMETHEUS"]
    # The hard case: SIGINT inherited as ignored; Ctrl-C must still stop it all.
    up = start_up(tmp_path, env, sigint_ignored=True)
    started: list[int] = []
    expected: dict[str, int] = defaultdict(int)
    for commune in load().communes.values():
        if commune.epci and commune.population is not None:
            expected[commune.epci] += commune.population
    in_74 = {c.epci for c in load().communes.values() if c.departement == "74" and c.epci}
    url = (
        f"http://127.0.0.1:{ports['API']}/indicateurs?niveau=epci&departement=74"
        f"&indicateur=population&annee={demo.YEAR}"  # the demo holds earlier years too
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
    finally:
        started = descendants(up.pid)
        reaper += started
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=90)
    assert up.returncode == 0, output
    assert "itte is up" in output and "stopping..." in output
    assert f"http://127.0.0.1:{prometheus}/alerts" in output
    assert "cleaner exited with -9; restarting in" in output
    assert "cleaner restarted (1 restart(s) so far)" in output
    assert len(started) >= 6, started  # four services, Prometheus, the broker
    assert_nothing_left(tmp_path, started)


def test_servers_stop_ends_up_and_the_next_up_stops_what_a_killed_one_left(
    tmp_path: Path, reaper: list[int]
) -> None:
    env, ports = up_environment(tmp_path)
    api = f"http://127.0.0.1:{ports['API']}/readyz"
    prometheus = f"http://127.0.0.1:{ports['PROMETHEUS']}/-/ready"
    first = start_up(tmp_path, env, "--no-demo")
    second: subprocess.Popen[str] | None = None
    try:
        eventually(lambda: get_json(api)["status"] == "ok", 180, "the first up's API")
        eventually(lambda: urlopen(prometheus, timeout=2).status == 200, 60, "its Prometheus")
        left = descendants(first.pid)
        reaper += left
        first.kill()  # SIGKILL: no handler runs, its children live on
        first.wait(timeout=10)
        # The next up joins the embedded broker and Postgres (they hold the
        # data) and stops the rest: the four services and Prometheus.
        services = [pid for pid in running(left) if started_by_up(pid)]
        assert len(services) == 5, "the services and Prometheus outlive a killed itte up"

        second = start_up(tmp_path, env, "--no-demo")
        eventually(lambda: not running(services), 60, "the second up to stop the leftovers")
        eventually(lambda: get_json(api)["status"] == "ok", 180, "the second up's API")
        third = itte(tmp_path, env, "up", "--no-demo")
        assert third.returncode != 0 and "itte up already runs" in third.stderr
        started = descendants(second.pid)
        reaper += started
        # From another terminal: SIGTERM to that up, which stops what it started.
        stopped = itte(tmp_path, env, "servers", "stop")
        assert stopped.returncode == 0 and "itte up stopped" in stopped.stdout, stopped.stderr
    finally:
        for up in (first, second):
            if up is not None and up.poll() is None:
                up.terminate()
        output, _ = second.communicate(timeout=90) if second else ("", "")
    assert second is not None and second.returncode == 0, output
    assert "left by an itte up that was killed" in output and "stopping..." in output
    assert_nothing_left(tmp_path, started + left)
