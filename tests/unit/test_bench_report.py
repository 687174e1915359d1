"""The benchmark report is what its raw figures say, and the figures cannot
flatter: impossible W2 samples fail the run, W3 errors fail its verdict."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from bench.data import YEARS
from bench.freshness import (
    ImpossibleSample,
    Requests,
    Visibility,
    probe_communes,
    probes_of,
    summary,
)
from bench.report import cpu_per_correction, rate_and_p99_gap, render, targets
from schemas.clean import place_hash

ROOT = Path(__file__).parents[2]
FIGURES = json.loads((ROOT / "bench/results/bench.json").read_text())


def test_benchmarks_md_is_exactly_the_report_of_the_committed_figures() -> None:
    assert (ROOT / "BENCHMARKS.md").read_text() == render(FIGURES)


def test_the_committed_figures_hold_their_raw_samples() -> None:
    repeats = FIGURES["sizes"]["repeats"]
    assert all(len(runs) == repeats for runs in FIGURES["w1"]["runs"].values())
    for run in FIGURES["w2"]["runs"]:
        for where in ("api", "topic"):
            figures = run[where]
            latencies = figures["latencies_ms"]
            assert len(latencies) * run["records_per_request"] == figures["samples"]
            assert min(latencies) >= 0 and max(latencies) == figures["max_ms"]
    for runs in FIGURES["w3"]["runs"].values():
        assert all("Requests/sec" in run["api"]["output"] for run in runs)


def requests(acked: dict[int, float]) -> Requests:
    r = Requests(0, max(acked))
    r.sent = {k: at - 0.001 for k, at in acked.items()}
    r.acked = dict(acked)
    return r


def test_w2_credits_each_request_at_its_own_probes_per_record() -> None:
    seen = Visibility(parts=2)
    seen.saw(1, 0, 10.4)
    seen.saw(1, 1, 10.5)  # request 1 is visible whole; request 0 is not, whatever 1 says
    seen.saw(1, 1, 11.0)  # first sighting kept
    seen.saw(0, 0, 10.1)  # one partition of request 0 is not all of it
    figures = summary(requests({0: 10.0, 1: 10.2}), seen, per_request=100)
    assert figures["latencies_ms"] == [300.0]  # at its latest probe, 10.5
    assert (figures["samples"], figures["unseen"]) == (100, 100)


def test_w2_probes_cover_every_clean_partition_once() -> None:
    """The cleaner routes a record by its place: a request's probes must land
    on every partition of indicators.clean, on communes no other request uses."""
    partitions = len(probe_communes())
    used: set[tuple[str, str]] = set()
    for k in (0, 1, 49, 50, 1799):
        probes = probes_of(k)
        assert sorted(
            place_hash("total", YEARS[0], commune) % partitions for _, commune in probes
        ) == list(range(partitions))
        assert not used & set(probes)
        used |= set(probes)


@pytest.mark.parametrize(
    ("acked", "seen_at"),
    [({0: 10.0}, 9.9), ({1: 10.0}, 10.5)],
    ids=["seen before its send", "seen but never acknowledged"],
)
def test_an_impossible_w2_sample_fails_the_run(acked: dict[int, float], seen_at: float) -> None:
    seen = Visibility(parts=1)
    seen.saw(0, 0, seen_at)
    with pytest.raises(ImpossibleSample):
        summary(requests(acked), seen, per_request=10)  # sent 1 ms before its ack


def test_a_request_seen_before_its_202_arrived_counts_zero_from_its_ack() -> None:
    """Between the broker's acknowledgement and the 202's arrival, the
    pipeline may be quicker: not impossible (it happened with two workers)."""
    seen = Visibility(parts=1)
    seen.saw(0, 0, 9.9995)  # after its send (9.999), before its 202 (10.0)
    figures = summary(requests({0: 10.0}), seen, per_request=10)
    assert (figures["latencies_ms"], figures["before_ack"]) == ([0.0], 10)
    assert figures["sent_latencies_ms"] == [0.5]


def test_a_fast_api_that_answers_errors_does_not_meet_w3() -> None:
    figures = copy.deepcopy(FIGURES)
    [w3] = [row for row in targets(figures) if row[0].startswith("W3: ")]
    assert "**met**" in w3[2]
    figures["w3"]["runs"]["departement"][0]["api"]["errors"] = 3
    figures["w3"]["runs"]["epci"][-1]["api_no_cache"]["socket_errors"] = 2
    [w3] = [row for row in targets(figures) if row[0].startswith("W3: ")]
    assert "**not met**" in w3[2] and "5 non-2xx answers or socket errors" in w3[2]


def test_a_gap_names_only_the_parts_of_a_target_not_met() -> None:
    assert rate_and_p99_gap(2030, 2000, 76.9, 50) == "needs 1.5× the p99"
    assert rate_and_p99_gap(1000, 2000, 10, 50) == "needs 2.0× the rate"
    assert rate_and_p99_gap(1000, 2000, 100, 50) == "needs 2.0× the rate, needs 2.0× the p99"


def test_w2_shows_what_a_correction_costs_each_process_and_their_sum() -> None:
    runs = [
        {
            "target_records_per_second": 5_000,
            "cpu_us_per_record": {"cleaner": 20.5, "postgres": 30, "bench (senders, readers)": 40},
        },
    ]
    shown = cpu_per_correction(runs)
    assert "| 5,000 | 20.5 | 30 | 40 | 50.5 |" in shown  # the sum leaves the harness out
    assert cpu_per_correction([{"target_records_per_second": 5_000}]) == ""
