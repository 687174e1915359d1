"""A Prometheus on this machine, beside ``itte up`` and in the operations
tests: the Debian binary (``make up`` installs it when missing), configured
as deploy/prometheus.yml (the same jobs, the same alert rules), scraping the
services' processes on their local ports."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import yaml

from itte.processes import service_of, wait_http

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def configuration(
    ports: Mapping[str, int], rule_files: list[Path], interval_seconds: float = 15
) -> dict:
    """deploy/prometheus.yml with the services at ``127.0.0.1:<port>``.
    ``ports``: by service, or by instance (``cleaner-2``: another target of
    the cleaner's job; ``postgres``: an exporter's, whose job is kept only
    then). Without compose's Alertmanager: the alerts show on Prometheus'
    own page."""
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config.pop("alerting")
    config["scrape_configs"] = [
        job
        for job in config["scrape_configs"]
        if job["job_name"].startswith("itte-") or job["job_name"] in ports
    ]
    for job in config["scrape_configs"]:
        service = job["job_name"].removeprefix("itte-")
        targets = [
            f"127.0.0.1:{port}" for name, port in ports.items() if service_of(name) == service
        ]
        job["static_configs"] = [{"targets": targets}]
    interval = f"{interval_seconds:g}s"
    config["global"] |= {"scrape_interval": interval, "evaluation_interval": interval}
    config["rule_files"] = [str(path.resolve()) for path in rule_files]
    return config


class LocalPrometheus:
    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("prometheus") is not None

    def start(
        self,
        ports: Mapping[str, int],
        rule_files: list[Path] | None = None,
        interval_seconds: float = 15,
    ) -> None:
        """Launched and ready."""
        self.launch(ports, rule_files, interval_seconds)
        self.wait_ready()

    def launch(
        self,
        ports: Mapping[str, int],
        rule_files: list[Path] | None = None,
        interval_seconds: float = 15,
    ) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        rules = rule_files if rule_files is not None else [DEPLOY / "alerts.yml"]
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(configuration(ports, rules, interval_seconds)))
        with open(self.workdir / "prometheus.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_ready(self) -> None:
        wait_http(f"{self.url}/-/ready", 60, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
