"""Alerts reach someone: Prometheus fires a rule, Alertmanager with the
route of docker-compose.yml (its `configs.alertmanager`) posts it to the
operators' webhook. Debian's prometheus and prometheus-alertmanager, for
real; the webhook is a stand-in that records what it receives."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from itte.embedded import free_port
from tests.e2e.stack import eventually

ROOT = Path(__file__).resolve().parents[2]
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "prometheus-alertmanager"
AMTOOL = shutil.which("amtool") or "amtool"
PROMETHEUS = shutil.which("prometheus") or "prometheus"


def alertmanager_config(webhook: str) -> str:
    """The compose file's route, with the webhook's address for
    ITTE_ALERT_WEBHOOK_URL (and a second's wait before the first message,
    not half a minute: timing only)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    content: str = compose["configs"]["alertmanager"]["content"]
    start = content.index("${ITTE_ALERT_WEBHOOK_URL")
    end = content.index("}", start) + 1
    assert "group_wait: 30s" in content
    return (content[:start] + webhook + content[end:]).replace("group_wait: 30s", "group_wait: 1s")


class Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Webhook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    Webhook.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/alerts"
    server.shutdown()


def test_the_compose_route_is_a_valid_alertmanager_configuration(tmp_path: Path) -> None:
    config = tmp_path / "alertmanager.yml"
    config.write_text(alertmanager_config("https://hooks.example.org/itte"))
    checked = subprocess.run([AMTOOL, "check-config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    routed = subprocess.run(
        [
            AMTOOL,
            "config",
            "routes",
            "test",
            "--config.file",
            str(config),
            "alertname=ItteServiceDown",
        ],
        capture_output=True,
        text=True,
    )
    assert routed.stdout.strip() == "operators", routed.stdout + routed.stderr


def test_a_firing_rule_reaches_the_operators_webhook(tmp_path: Path, webhook: str) -> None:
    manager_port, prometheus_port = free_port(), free_port()
    (tmp_path / "alertmanager.yml").write_text(alertmanager_config(webhook))
    (tmp_path / "rules.yml").write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "delivery",
                        "rules": [
                            {
                                "alert": "ItteDeliveryCheck",
                                "expr": "vector(1)",
                                "labels": {"severity": "ticket"},
                            }
                        ],
                    }
                ]
            }
        )
    )
    deploy = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    [managers] = deploy["alerting"]["alertmanagers"]
    managers["static_configs"] = [{"targets": [f"127.0.0.1:{manager_port}"]}]
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"evaluation_interval": "1s"},
                "rule_files": [str(tmp_path / "rules.yml")],
                "alerting": deploy["alerting"],
            }
        )
    )
    manager = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address=127.0.0.1:{manager_port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "alertmanager.log").open("wb"),
    )
    prometheus = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
            # Its first notice can go before it has found the Alertmanager
            # (dropped); it sends again after this, a minute by default.
            "--rules.alert.resend-delay=1s",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    try:

        def delivered() -> dict | None:
            for message in Webhook.received:
                names = {a["labels"]["alertname"] for a in message["alerts"]}
                if "ItteDeliveryCheck" in names:
                    return message
            return None

        message = eventually(delivered, 60, "the alert at the webhook")
    finally:
        for process in (prometheus, manager):
            process.terminate()
            process.wait(timeout=10)
    assert message["receiver"] == "operators" and message["status"] == "firing"
    [alert] = [a for a in message["alerts"] if a["labels"]["alertname"] == "ItteDeliveryCheck"]
    assert alert["labels"]["severity"] == "ticket"
