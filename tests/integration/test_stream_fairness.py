"""Live streams are shared between client addresses (issue #30, point 6),
on a real uvicorn server: two loopback addresses are two clients."""

from __future__ import annotations

import threading

import httpx

from services.api.app import create_app, read_only_engine
from tests.integration.served import serving, until


def client(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def test_a_newcomer_takes_the_place_of_the_busiest_clients_idlest_stream(
    database_url: str,
) -> None:
    app = create_app(
        read_only_engine(database_url, 2), cache_bytes=0, max_streams=2, streams_per_client=2
    )
    streams = app.state.streams
    with serving(app) as port, client("127.0.0.2") as busy, client("127.0.0.3") as newcomer:
        url = f"http://127.0.0.1:{port}/indicateurs/flux"
        with busy.stream("GET", url) as first, busy.stream("GET", url) as second:
            assert (first.status_code, second.status_code) == (200, 200)
            assert busy.get(url).status_code == 429  # its own cap
            ended = threading.Event()

            def read_to_the_end() -> None:
                for _ in first.iter_raw():
                    pass
                ended.set()

            threading.Thread(target=read_to_the_end, daemon=True).start()
            with newcomer.stream("GET", url) as third:
                assert third.status_code == 200
                assert ended.wait(10)  # the busiest client's idlest stream ended
                assert {c: len(s) for c, s in streams.slots.items()} == {
                    "127.0.0.2": 1,
                    "127.0.0.3": 1,
                }
                assert busy.get(url).status_code == 503  # one each: nobody gives way
    until(lambda: streams.open == 0, 10)
