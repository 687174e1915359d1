"""An app on a real uvicorn server in a thread, for the tests that need
what only a server does: flow control, client addresses, cut connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from itte.embedded import free_port


def until(condition: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``condition`` held; fails past ``seconds``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(0.02)
    return time.monotonic() - started


@contextmanager
def serving(app: FastAPI) -> Iterator[int]:
    """The port ``app`` answers on, until the block ends."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    until(lambda: server.started, 10)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
