"""The services as separate processes (``itte <service>``), each logging to a
file of its own: what ``itte up``, the end-to-end tests and the benchmarks run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

SERVICES = ("ingestor", "cleaner", "aggregator", "api")
# Several processes of these share one consumer group: Kafka gives each its
# own partitions (ITTE_WORKERS).
SCALED = ("cleaner", "aggregator")
PORT_STEP = 100  # instance n of a scaled service listens on its port + 100·(n − 1)


def instances(ports: Mapping[str, int], workers: int = 1) -> dict[str, int]:
    """Each process of a pipeline with ``workers`` cleaners and aggregators,
    and its port, from the services' ports: ``cleaner``, ``cleaner-2``…"""
    return {
        (f"{service}-{n}" if n > 1 else service): ports[service] + PORT_STEP * (n - 1)
        for service in SERVICES
        for n in range(1, (workers if service in SCALED else 1) + 1)
    }


def service_of(instance: str) -> str:
    """``cleaner-2`` → ``cleaner``."""
    return instance.partition("-")[0]


def wait_http(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Until ``url`` answers 200; fails early if ``process`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.3)


class Processes:
    """Child processes by instance name (``cleaner``, ``cleaner-2``…); their
    output goes to ``<log_dir>/<name>.log``.

    ``ports``: each instance's port (see :func:`instances`), handed to it as
    its service's ``ITTE_<SERVICE>_PORT``; without it, the four services with
    the ports of ``env``."""

    def __init__(
        self, env: dict[str, str], log_dir: Path, ports: Mapping[str, int] | None = None
    ) -> None:
        self.env = env
        self.log_dir = log_dir
        self.ports = dict(ports or {})
        self.names = list(self.ports) or list(SERVICES)
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        service = service_of(name)
        env = self.env
        if name in self.ports:
            env = {**env, f"ITTE_{service.upper()}_PORT": str(self.ports[name])}
        with open(self.log_dir / f"{name}.log", "ab") as log:  # the child keeps its own copy
            self.running[name] = subprocess.Popen(
                [sys.executable, "-m", "itte", service],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self.running[name]

    def start_all(self) -> None:
        for name in self.names:
            self.start(name)

    def kill(self, name: str) -> None:
        """SIGKILL: the crash no handler sees."""
        process = self.running[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def terminate(self, name: str, timeout: float = 30) -> float:
        """SIGTERM, as an orchestrator stops a service: the seconds it took to exit."""
        process = self.running[name]
        started = time.monotonic()
        process.terminate()
        process.wait(timeout=timeout)
        return time.monotonic() - started

    def pause(self, name: str, paused: bool = True) -> None:
        """SIGSTOP (or SIGCONT): a process frozen as by a long GC pause, a
        full host or a debugger; its heartbeats stop with it."""
        self.running[name].send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    def exited(self) -> str | None:
        """The name of a service that has stopped, if any."""
        return next((n for n, p in self.running.items() if p.poll() is not None), None)

    def stop_all(self, grace: float = 15) -> None:
        """SIGTERM to all, SIGKILL to those still running after ``grace`` seconds."""
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        for process in self.running.values():
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=grace)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Supervisor:
    """Restarts a service that dies, as compose's restart policy does: after
    1 s, then twice as long each time it dies again within a minute (at most
    30 s). Says so, and counts the restarts."""

    def __init__(self, processes: Processes, say: Callable[[str], None] = print) -> None:
        self.processes = processes
        self.say = say
        self.restarts: Counter[str] = Counter()
        self._due: dict[str, float] = {}
        self._delay: dict[str, float] = {}
        self._started: dict[str, float] = {name: time.monotonic() for name in processes.running}

    def tick(self) -> None:
        """Call it often: notes the deaths, restarts the services whose delay is over."""
        now = time.monotonic()
        for name, process in self.processes.running.items():
            if process.poll() is None or name in self._due:
                continue
            lived = now - self._started.get(name, now)
            delay = 1.0 if lived > 60 else min(2 * self._delay.get(name, 0.5), 30.0)
            self._delay[name], self._due[name] = delay, now + delay
            self.say(f"{name} exited with {process.returncode}; restarting in {delay:.0f} s")
        for name, due in list(self._due.items()):
            if now >= due:
                del self._due[name]
                self.processes.start(name)
                self._started[name] = time.monotonic()
                self.restarts[name] += 1
                self.say(f"{name} restarted ({self.restarts[name]} restart(s) so far)")
