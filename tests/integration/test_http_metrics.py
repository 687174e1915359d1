"""HTTP metrics of a real API process with two uvicorn workers: every scrape,
whichever worker answers it, shows the requests of both, by route and status."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from itte.embedded import free_port
from itte.processes import Processes, wait_http


def requests_counted(base: str) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(f"{base}/metrics/", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.labels["handler"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "itte_http_requests"
        for s in family.samples
        if s.name == "itte_http_requests_total"
    }


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_two_workers_count_every_request_once(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ITTE_API_PORT": str(port),
        "ITTE_API_WORKERS": "2",
        "ITTE_STATE_DIR": str(tmp_path / "state"),
    }
    processes = Processes(env, tmp_path)
    api = processes.start("api")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/readyz", 60, api)
        statuses = [get(f"{base}/indicateurs?departement=33&annee={2000 + i}") for i in range(30)]
        statuses += [get(f"{base}/indicateurs?annee=1") for _ in range(7)]  # out of range: 422
        statuses += [get(f"{base}/nowhere") for _ in range(3)]
        assert statuses == [200] * 30 + [422] * 7 + [404] * 3
        expected = {("/indicateurs", "200"): 30, ("/indicateurs", "422"): 7, ("none", "404"): 3}
        # A worker counts a request once its answer is sent, so a client may
        # read the answer just before the count moves (a scrape 3 ms after
        # the last 404 once saw 2 of 3): wait for the last one, bounded.
        deadline = time.monotonic() + 10
        while requests_counted(base) != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(6):  # then every scrape, whichever worker answers, shows them all
            assert requests_counted(base) == expected, processes.log_tail("api")
    finally:
        processes.stop_all()
