"""A CSV reader that stops reading is cut off, and gives back the database
connection its export held (issue #30, point 6): on a real uvicorn server,
over Postgres, with a client whose receive window is tiny."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from services.api.app import create_app, read_only_engine
from tests.integration.served import serving, until

CSV = "/indicateurs?niveau=commune&indicateur=pop&format=csv"
SEND_TIMEOUT = 0.5


@pytest.fixture
def served(database_url: str) -> Iterator[tuple[str, object]]:
    """Every commune for two years (about 7 MB of CSV, more than the
    sockets buffer), served by uvicorn."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO aggregates "
            "(indicateur, sous_champ, annee, niveau, code, valeur, nb_valeurs, unite, revision) "
            "SELECT 'pop', 'total', y, 'commune', c.code, 1234.5, 1, 'habitants', 1 "
            "FROM communes c, generate_series(2020, 2021) AS y"
        )
    engine = read_only_engine(database_url, 2)
    with serving(create_app(engine, cache_bytes=0, send_timeout=SEND_TIMEOUT)) as port:
        yield f"http://127.0.0.1:{port}", engine
    engine.dispose()


def test_a_reader_that_stops_reading_is_cut_and_the_connection_returns(served) -> None:
    url, engine = served
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as slow:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", port))
        slow.sendall(f"GET {CSV} HTTP/1.1\r\nHost: itte\r\n\r\n".encode())
        until(lambda: engine.pool.checkedout() == 1, 10)  # the export reads
        held = until(lambda: engine.pool.checkedout() == 0, 10)  # and stops
        assert held < SEND_TIMEOUT + 3
        slow.settimeout(10)
        received = b""
        while chunk := slow.recv(1 << 16):
            received = (received + chunk)[-16:]
        assert not received.endswith(b"0\r\n\r\n")  # cut: never a complete-looking answer
    whole = httpx.get(url + CSV, timeout=60)  # a reader that reads gets every row
    total = httpx.get(url + "/indicateurs?niveau=commune&indicateur=pop&limit=1")
    assert whole.status_code == 200 and int(total.headers["X-Total-Count"]) > 60_000
    assert len(whole.text.splitlines()) == 1 + int(total.headers["X-Total-Count"])
