"""``ITTE_WORKERS``: the processes `itte up` starts, their ports, what
Prometheus scrapes, and a count that would leave processes idle refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from itte.processes import Processes, instances, service_of
from itte.prometheus import configuration
from itte.up import UpSettings, up

PORTS = {"ingestor": 8000, "cleaner": 6066, "aggregator": 6067, "api": 8001}


def test_workers_scale_the_cleaner_and_the_aggregator_only_each_on_a_port_of_its_own() -> None:
    assert instances(PORTS) == PORTS
    scaled = instances(PORTS, 3)
    assert scaled == {
        "ingestor": 8000,
        "cleaner": 6066,
        "cleaner-2": 6166,
        "cleaner-3": 6266,
        "aggregator": 6067,
        "aggregator-2": 6167,
        "aggregator-3": 6267,
        "api": 8001,
    }
    assert len(set(scaled.values())) == len(scaled)
    assert [service_of(name) for name in scaled] == [
        "ingestor", "cleaner", "cleaner", "cleaner", "aggregator", "aggregator", "aggregator", "api"
    ]  # fmt: skip


def test_each_instance_runs_its_service_with_its_own_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[list[str], str]] = []

    class Recorded:
        def __init__(self, args: list[str], env: dict[str, str], **_: object) -> None:
            started.append((args[1:], env["ITTE_CLEANER_PORT"]))

    monkeypatch.setattr("itte.processes.subprocess.Popen", Recorded)
    processes = Processes({"ITTE_CLEANER_PORT": "6066"}, tmp_path, instances(PORTS, 2))
    processes.start("cleaner-2")
    processes.start("cleaner")
    assert started == [(["-m", "itte", "cleaner"], "6166"), (["-m", "itte", "cleaner"], "6066")]


def test_prometheus_scrapes_every_instance_in_its_services_job() -> None:
    config = configuration(instances(PORTS, 2), rule_files=[])
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert targets["itte-cleaner"] == ["127.0.0.1:6066", "127.0.0.1:6166"]
    assert targets["itte-aggregator"] == ["127.0.0.1:6067", "127.0.0.1:6167"]
    assert targets["itte-api"] == ["127.0.0.1:8001"]


def test_more_workers_than_partitions_is_refused_before_anything_starts(tmp_path: Path) -> None:
    settings = UpSettings(workers=5, topic_partitions=4, state_dir=tmp_path)
    with pytest.raises(SystemExit, match="ITTE_WORKERS=5 is more than ITTE_TOPIC_PARTITIONS=4"):
        up(settings, demo=False)
    assert not any(tmp_path.iterdir())  # no server started, no folder written
