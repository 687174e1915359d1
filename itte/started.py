"""What ``itte up`` started, written down in ``<state_dir>/up.json`` as it
goes, so that whatever stops it, nothing it started runs on unknown: a later
``itte up`` or ``itte servers stop`` finds what an ``itte up`` killed by
SIGKILL (no handler runs) left behind, and stops it.

A process is known by its pid and its start time: a pid the system has since
given to another process is not ours and is never signalled."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

import psutil

RECORD = "up.json"
GRACE_SECONDS = 15  # SIGTERM, then SIGKILL to what still runs after this


def _entry(pid: int) -> dict[str, float] | None:
    try:
        return {"pid": pid, "created": psutil.Process(pid).create_time()}
    except psutil.Error:
        return None


def _process(entry: dict[str, float]) -> psutil.Process | None:
    """The recorded process if it still runs (and is the same one)."""
    try:
        process = psutil.Process(int(entry["pid"]))
        if process.create_time() == entry["created"] and running(process):
            return process
    except (psutil.Error, KeyError, TypeError, ValueError, OverflowError):
        pass
    return None


class UpRecord:
    """``<state_dir>/up.json``: the running ``itte up`` and its children."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / RECORD

    def write(self, children: Iterable[int]) -> None:
        entries = [e for e in map(_entry, children) if e is not None]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        written = self.path.with_suffix(".json.new")
        written.write_text(json.dumps({"up": _entry(os.getpid()), "children": entries}))
        written.replace(self.path)  # whole or not at all, whenever we are killed

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def _read(self) -> dict:
        try:
            found = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def running_up(self) -> psutil.Process | None:
        """The ``itte up`` of this state folder, if another one runs now."""
        entry = self._read().get("up")
        process = _process(entry) if isinstance(entry, dict) else None
        return process if process is not None and process.pid != os.getpid() else None

    def leftovers(self) -> list[psutil.Process]:
        """Recorded children still running."""
        entries = self._read().get("children")
        if not isinstance(entries, list):
            return []
        found = [_process(e) for e in entries if isinstance(e, dict)]
        return [p for p in found if p is not None]


def stop(processes: list[psutil.Process], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM to each, SIGKILL to those still running after ``grace``
    seconds; returns when all are gone."""
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGTERM)
    alive = wait_gone(processes, grace)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    wait_gone(alive, grace)


def wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Until each has ended; those still running after ``timeout`` seconds.
    A zombie has ended: its parent may be a process that never reaps (the
    killed ``itte up``'s children go to init, which in a container may be
    anything), and psutil's own wait would hold on until the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in processes if running(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def running(process: psutil.Process) -> bool:
    try:
        if process.status() != psutil.STATUS_ZOMBIE:
            return True
        with contextlib.suppress(psutil.Error, ChildProcessError):
            process.wait(0)  # reaped, if it is a child of ours
    except psutil.NoSuchProcess:
        pass
    return False


def stop_leftovers(state_dir: Path, grace: float = GRACE_SECONDS) -> int:
    """Stops what a killed ``itte up`` left running; how many processes."""
    record = UpRecord(state_dir)
    left = record.leftovers()
    stop(left, grace)
    record.clear()
    return len(left)


def stop_up(state_dir: Path, grace: float = 60) -> bool:
    """Asks a running ``itte up`` to stop (SIGTERM: it stops what it started),
    and waits for it; whether there was one."""
    running = UpRecord(state_dir).running_up()
    if running is None:
        return False
    stop([running], grace)
    return True
