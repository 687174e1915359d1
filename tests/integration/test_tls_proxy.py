"""The TLS proxy of docker-compose.yml (deploy/Caddyfile), run for real by
Caddy (Debian's package) in front of a stand-in upstream: HTTPS only, the
HTTP port redirects, the services' /metrics never served outside."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from itte.embedded import free_port
from tests.e2e.stack import eventually

CADDYFILE = Path(__file__).resolve().parents[2] / "deploy" / "Caddyfile"
CADDY = shutil.which("caddy") or "caddy (make test installs it)"


class Upstream(BaseHTTPRequestHandler):
    """Answers every path with its own name: what the proxy forwards shows."""

    def do_GET(self) -> None:
        body = f"upstream {self.server.server_port} {self.path}".encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[dict[str, object]]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    up = f"127.0.0.1:{upstream.server_port}"
    ports = {name: free_port() for name in ("http", "api", "ingest", "grafana")}
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "ITTE_TLS": "internal",
        "ITTE_HTTP_PORT": str(ports["http"]),
        "ITTE_HTTPS_PORT": str(ports["api"]),
        "ITTE_API_HOSTNAME": f"localhost:{ports['api']}",
        "ITTE_INGEST_HOSTNAME": f"localhost:{ports['ingest']}",
        "ITTE_GRAFANA_HOSTNAME": f"localhost:{ports['grafana']}",
        "ITTE_API_UPSTREAM": up,
        "ITTE_INGEST_UPSTREAM": up,
        "ITTE_GRAFANA_UPSTREAM": up,
    }
    caddy = subprocess.Popen(
        [CADDY, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "caddy.log").open("wb"),
    )
    root = tmp_path / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    try:
        eventually(root.exists, 30, "Caddy's local CA")
        yield {"ports": ports, "root": root, "upstream": upstream.server_port}
    finally:
        caddy.terminate()
        caddy.wait(timeout=10)
        upstream.shutdown()


def test_every_site_is_served_over_tls_and_never_its_metrics(proxy: dict) -> None:
    ports, upstream = proxy["ports"], proxy["upstream"]
    with httpx.Client(verify=str(proxy["root"]), timeout=5) as client:
        for site in ("api", "ingest", "grafana"):
            base = f"https://localhost:{ports[site]}"

            def served(base: str = base) -> httpx.Response | None:
                try:
                    return client.get(f"{base}/indicateurs?departement=33")
                except httpx.ConnectError:
                    return None  # the certificate is being issued

            answer = eventually(served, 30, f"{site} over TLS")
            assert answer.status_code == 200, site
            assert answer.text == f"upstream {upstream} /indicateurs?departement=33"
            assert answer.headers["strict-transport-security"].startswith("max-age=")
            for path in ("/metrics", "/metrics/", "/metrics/x"):
                refused = client.get(f"{base}{path}")
                assert refused.status_code == 404 and "upstream" not in refused.text, path
    # In clear: the HTTPS port does not answer HTTP, the HTTP port redirects.
    with httpx.Client(timeout=5) as clear:
        with pytest.raises(httpx.HTTPError):
            clear.get(f"http://localhost:{ports['api']}/indicateurs").raise_for_status()
        moved = clear.get(f"http://localhost:{ports['http']}/indicateurs")
        assert moved.status_code in (301, 308)
        assert moved.headers["location"].startswith("https://localhost")
