"""What `itte up` started is written down, and stopped from the record: a
process that ignores SIGTERM is killed after the grace, a pid the system
gave to another process is never signalled, a damaged record stops nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itte.started import RECORD, UpRecord, stop_leftovers

IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(600)"
)


@pytest.fixture
def stubborn() -> Iterator[subprocess.Popen[str]]:
    """A child that ignores SIGTERM, as a wedged service would."""
    child = subprocess.Popen(
        [sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    yield child
    child.kill()
    child.wait()


def test_a_process_deaf_to_sigterm_is_killed_after_the_grace(
    tmp_path: Path, stubborn: subprocess.Popen[str]
) -> None:
    UpRecord(tmp_path).write([stubborn.pid])
    started = time.monotonic()
    assert stop_leftovers(tmp_path, grace=0.5) == 1
    # Gone when stop returns (psutil reaped it: no status left for Popen),
    # and only after the grace: the SIGTERM did nothing, the SIGKILL did.
    assert not psutil.pid_exists(stubborn.pid)
    assert 0.5 <= time.monotonic() - started < 5
    assert not (tmp_path / RECORD).exists()


def test_a_reused_pid_is_not_ours(tmp_path: Path, stubborn: subprocess.Popen[str]) -> None:
    created = psutil.Process(stubborn.pid).create_time()
    (tmp_path / RECORD).write_text(
        json.dumps({"up": None, "children": [{"pid": stubborn.pid, "created": created - 10}]})
    )
    assert UpRecord(tmp_path).leftovers() == []
    assert stop_leftovers(tmp_path) == 0
    assert stubborn.poll() is None  # never signalled


def test_the_running_up_is_found_and_is_never_this_process(tmp_path: Path) -> None:
    record = UpRecord(tmp_path)
    record.write([])
    assert record.running_up() is None  # the record is ours
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        written = json.loads((tmp_path / RECORD).read_text())
        written["up"] = {"pid": other.pid, "created": psutil.Process(other.pid).create_time()}
        (tmp_path / RECORD).write_text(json.dumps(written))
        found = record.running_up()
        assert found is not None and found.pid == other.pid
    finally:
        other.kill()
        other.wait()
    assert record.running_up() is None  # gone now


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
ENTRY = st.fixed_dictionaries({"pid": st.integers() | JSON, "created": st.floats() | JSON})
SHAPED = st.fixed_dictionaries({"up": ENTRY | JSON, "children": st.lists(ENTRY | JSON) | JSON})


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300) | JSON | SHAPED)
def test_a_damaged_record_stops_nothing(
    tmp_path_factory: pytest.TempPathFactory, raw: object
) -> None:
    state_dir = tmp_path_factory.mktemp("state")
    path = state_dir / RECORD
    if isinstance(raw, bytes):
        path.write_bytes(raw)
    else:
        path.write_text(json.dumps(raw))
    record = UpRecord(state_dir)
    assert record.leftovers() == [] and record.running_up() is None
