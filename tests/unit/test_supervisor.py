"""`itte up` restarts a service that dies, with a growing delay, and says so."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from itte.processes import Processes, Supervisor


class Sleepers(Processes):
    """Processes that only wait, standing for the services."""

    def start(self, name: str) -> subprocess.Popen[bytes]:
        self.running[name] = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        return self.running[name]


def test_a_dead_service_is_restarted_after_a_delay_that_grows(tmp_path: Path) -> None:
    processes = Sleepers({}, tmp_path)
    for name in ("cleaner", "api"):
        processes.start(name)
    said: list[str] = []
    supervisor = Supervisor(processes, said.append)
    try:
        first = processes.running["cleaner"]
        processes.kill("cleaner")
        supervisor.tick()
        assert said == [f"cleaner exited with {first.returncode}; restarting in 1 s"]
        supervisor.tick()
        assert processes.running["cleaner"] is first  # not before its delay
        time.sleep(1.1)
        supervisor.tick()
        assert processes.running["cleaner"] is not first
        assert processes.running["cleaner"].poll() is None
        assert said[-1] == "cleaner restarted (1 restart(s) so far)"
        processes.kill("cleaner")  # dies again at once: a longer wait
        supervisor.tick()
        assert said[-1].endswith("restarting in 2 s")
        assert supervisor.restarts == {"cleaner": 1}
        assert processes.running["api"].poll() is None  # the others run on
    finally:
        processes.stop_all(grace=1)
