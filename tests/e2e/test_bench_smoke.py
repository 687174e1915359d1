"""The benchmark harness, at tiny sizes, so that it cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bench.report import render
from common import db
from common.servers import Servers

ROOT = Path(__file__).parents[2]
SMOKE_SECONDS = 600  # the harness's own bound, under the test's


@pytest.mark.timeout(SMOKE_SECONDS + 60)
def test_make_bench_harness_writes_every_figure_and_verdict(tmp_path: Path, servers: Servers):
    out, report = tmp_path / "bench.json", tmp_path / "BENCHMARKS.md"
    # A database of its own on the session's Postgres (the harness's runs on
    # given servers): about 30 s of Postgres start-ups saved. Each run still
    # starts a broker of its own.
    database = db.create_database(servers.database_url, f"bench_{uuid.uuid4().hex[:10]}")
    environment = {**os.environ, "DATABASE_URL": database}
    environment.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(out), "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=SMOKE_SECONDS,
        cwd=ROOT,
        env=environment,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    rates = figures["w1"]["median_records_per_second"]
    assert set(rates) == {
        "itte_file",
        "itte_http",
        "itte_workers",
        "limit",
        "limit_writes",
        "pandas",
        "naive_faust",
    }
    assert all(rate > 0 for rate in rates.values())
    assert all(0 < mb < 1000 for mb in figures["w1"]["peak_rss_mb"].values())
    assert figures["w1"]["france_totals"]["compared"] > 0  # itte's totals beside pandas'
    assert figures["w1"]["cpu_seconds"]["itte ingest"] > 0
    assert figures["commit"] and "dirty" in figures
    assert {"cleaner-2", "aggregator-2"} <= set(figures["w1"]["peak_rss_mb_workers"])
    for run in figures["w2"]["runs"]:
        for where in ("api", "topic"):  # every acknowledged record seen, after its acknowledgement
            seen = run[where]
            assert seen["unseen"] == 0 and seen["samples"] > 0, run
            assert len(seen["latencies_ms"]) * run["records_per_request"] == seen["samples"]
            assert 0 <= min(seen["latencies_ms"]) <= max(seen["latencies_ms"]) < 60_000
    during = figures["w2"]["w3_during"]  # W3 through the cache while W2 runs
    assert set(during["reads"]) == {"untouched", "corrected"}
    for read in during["reads"].values():
        assert read["requests_per_second"] > 0 and read["errors"] == 0 == read["socket_errors"]
    assert during["stream"]["api"]["unseen"] == 0
    load = figures["w2_load"]  # corrections during a load, each seen after its send
    assert load["corrections"] > 0 and load["api"]["unseen"] == 0 == load["topic"]["unseen"]
    assert min(load["api"]["sent_latencies_ms"]) >= 0
    for runs in figures["w3"]["runs"].values():
        assert all(run["api"]["errors"] == 0 == run["api"]["socket_errors"] for run in runs)
    assert figures["w3"]["median"]["departement"]["api"]["requests_per_second"] > 0
    slowest = figures["profile"]["slowest_stage"]
    assert figures["profile"]["services"][slowest]["samples"] > 0
    text = report.read_text()
    for heading in ("## Targets", "## W1", "## W2", "## W3", "## Profile"):
        assert heading in text
    # One verdict per target: W1's 9 (CPU, 4 ratios, the corrections, scale-out, France
    # totals, peak RSS), W2 during a load, W3 while W2 runs, W3's 2 (W2's others are at
    # 5,000 and 10,000 records/s: not in smoke).
    assert text.count("**met**") + text.count("**not met**") == 13
    assert report.read_text() == render(figures)  # the report says what the figures say


def test_ingest_memory_benchmark_runs(tmp_path: Path):
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.ingest_memory", "--rows", "2000", "4000", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(out.read_text())["runs"]
