"""``make bench``: every workload, side by side, written to BENCHMARKS.md.

    python -m bench.run            # about 30 minutes on 2 cores
    python -m bench.run --smoke    # tiny sizes, for make test
    python -m bench.run --only w2  # one workload (w1, w2, w3, profile)

Runs on embedded servers, or on KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when
set. Figures go to bench/results/bench.json and BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench import api, baselines, freshness, naive_faust, profile, w1
from bench.data import RESULTS
from bench.environment import describe_machine, versions
from bench.report import render
from bench.stack import given_or_embedded
from itte.embedded import stop_embedded

ROOT = Path(__file__).parents[1]
WORKERS = 2  # W1 scale-out: cleaners and aggregators on the 4 partitions
WORKLOADS = ("w1", "w2", "w3", "profile")


@dataclass(frozen=True)
class Sizes:
    records: int  # W1, every pipeline but the naive one
    naive_records: int  # W1 (c): one record per message is slow, its rate is compared
    repeats: int  # W1
    w2_seconds: float
    w2_rates: tuple[int, ...]
    w3_repeats: int
    w3_seconds: int
    w3_no_cache_seconds: int  # a reference, not a target: shorter
    w3_connections: int
    w3_data: str
    profile_records: int
    # W2 again with this many cleaners and aggregators (0: not), at the two
    # highest rates for half as long: not a target, what scale-out does to it.
    w2_workers: int = 0


# The whole run must stay under 30 minutes on 2 cores (about 29 with these).
FULL = Sizes(1_000_000, 10_000, 3, 60, (1_000, 5_000, 10_000), 2, 30, 10, 64, "demo", 300_000, 2)
SMOKE = Sizes(3_000, 200, 1, 2, (200, 500), 1, 1, 1, 8, "population", 3_000)


def bulk_loads(sizes: Sizes, workdir: Path) -> dict[str, list[dict[str, Any]]]:
    """W1, interleaved: every pipeline once per repeat, so that the machine's
    noise falls on all of them alike."""
    runs: dict[str, list[dict[str, Any]]] = {
        k: []
        for k in (
            "itte_file",
            "itte_http",
            "itte_workers",
            "limit",
            "limit_writes",
            "pandas",
            "naive_faust",
        )
    }
    for r in range(sizes.repeats):
        runs["itte_file"].append(w1.run("file", sizes.records, f"file{r}", workdir))
        runs["itte_http"].append(w1.run("http", sizes.records, f"http{r}", workdir))
        runs["itte_workers"].append(
            w1.run("file", sizes.records, f"workers{r}", workdir, workers=WORKERS)
        )
        state = workdir / f"state-baselines{r}"
        servers = given_or_embedded(state)
        try:
            kafka, database = servers.kafka_bootstrap_servers, servers.database_url
            runs["limit"].append(baselines.limit(kafka, database, sizes.records, f"limit{r}"))
            runs["limit_writes"].append(
                baselines.limit_same_writes(kafka, database, sizes.records, f"writes{r}", workdir)
            )
            runs["pandas"].append(
                baselines.pandas_batch(
                    database, sizes.records, f"pandas{r}", workdir, w1.UPDATE_RECORDS
                )
            )
            runs["naive_faust"].append(
                naive_faust.run(kafka, database, sizes.naive_records, f"naive{r}", workdir)
            )
        finally:
            stop_embedded(state)
        print(
            f"W1 repeat {r + 1}/{sizes.repeats}:", json.dumps({k: v[-1] for k, v in runs.items()})
        )
    return runs


def summarize_w1(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def rate(name: str, i: int) -> float:
        return float(runs[name][i]["records_per_second"])

    repeats = range(len(runs["itte_file"]))
    ratios = {
        f"{mode}_to_{other}": statistics.median(rate(mode, i) / rate(other, i) for i in repeats)
        for mode in ("itte_file", "itte_http")
        for other in ("limit", "limit_writes", "pandas", "naive_faust")
    }
    ratios["itte_workers_to_itte_file"] = statistics.median(
        rate("itte_workers", i) / rate("itte_file", i) for i in repeats
    )
    return {
        "median_records_per_second": {
            name: statistics.median(r["records_per_second"] for r in rs)
            for name, rs in runs.items()
        },
        "median_seconds": {
            name: statistics.median(r["seconds"] for r in rs) for name, rs in runs.items()
        },
        "median_update_seconds": {
            name: statistics.median(r["update_seconds"] for r in rs)
            for name, rs in runs.items()
            if "update_seconds" in rs[0]
        },
        "ratios": {k: round(v, 2) for k, v in ratios.items()},
        "peak_rss_mb": {
            service: max(
                r["peak_rss_mb"][service] for m in ("itte_file", "itte_http") for r in runs[m]
            )
            for service in runs["itte_file"][0]["peak_rss_mb"]
        },
        "peak_rss_mb_workers": {
            process: max(r["peak_rss_mb"][process] for r in runs["itte_workers"])
            for process in runs["itte_workers"][0]["peak_rss_mb"]
        },
        "cpu_seconds": {
            service: statistics.median(r["cpu_seconds"][service] for r in runs["itte_file"])
            for service in runs["itte_file"][0]["cpu_seconds"]
        },
        "cpu_us_per_record": statistics.median(r["cpu_us_per_record"] for r in runs["itte_file"]),
        "france_totals": compare_totals(runs),
        "runs": runs,
    }


# pandas sums floats: an exact total of 10**6 values of 10**5 has 16
# significant digits, and float64 rounds past 15-17 of them.
FLOAT_TOLERANCE = 1e-9


def compare_totals(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """itte's France totals (exact) beside pandas' (floats), in each repeat:
    equal within FLOAT_TOLERANCE of the value, or the run fails."""
    compared, worst = 0, 0.0
    for mode in ("itte_file", "itte_http"):
        for ours, theirs in zip(runs[mode], runs["pandas"], strict=True):
            exact = {k.split("|", 1)[1]: Decimal(v) for k, v in ours["france_totals"].items()}
            floats = {k.split("|", 1)[1]: v for k, v in theirs["france_totals"].items()}
            if exact.keys() != floats.keys():
                raise RuntimeError(f"{mode}: France totals for {sorted(exact)} vs {sorted(floats)}")
            for key, value in exact.items():
                gap = abs(float(value) - floats[key]) / max(1.0, abs(float(value)))
                if gap > FLOAT_TOLERANCE:
                    raise RuntimeError(f"{mode} France {key}: {value} vs pandas {floats[key]}")
                worst, compared = max(worst, gap), compared + 1
    return {"compared": compared, "largest_relative_gap": worst, "tolerance": FLOAT_TOLERANCE}


def summarize_w3(result: dict[str, Any]) -> dict[str, Any]:
    def median(name: str, side: str, figure: str) -> float:
        return statistics.median(r[side][figure] for r in result["runs"][name])

    return {
        **result,
        "median": {
            name: {
                side: {
                    f: median(name, side, f) for f in ("requests_per_second", "p50_ms", "p99_ms")
                }
                for side in ("api", "api_no_cache", "psycopg")
            }
            for name in result["runs"]
        },
    }


def profiled(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    """A separate, unmeasured load with py-spy on each pipeline service; the
    slowest stage is the one that used the most CPU."""
    into = workdir / "profiles"
    load = w1.run("file", sizes.profile_records, "profile", workdir, profile=into)
    busiest = max(("cleaner", "aggregator", "ingestor"), key=lambda s: load["cpu_seconds"][s])
    return {
        "records": sizes.profile_records,
        "cpu_seconds": load["cpu_seconds"],
        "slowest_stage": busiest,
        "services": {
            f.stem: profile.summarize(f) for f in sorted(into.glob("*.txt")) if f.stat().st_size
        },
    }


def cpu_before(previous: Path) -> dict[str, Any] | None:
    """The CPU per record of each process in the run written before this one
    (``--out``), to set beside this run's."""
    if not previous.exists():
        return None
    figures = json.loads(previous.read_text())
    if "w1" not in figures:
        return None
    records = figures["sizes"]["records"]
    return {
        "date": figures["date"],
        "cpu_us_per_record": {
            name: round(1e6 * seconds / records)
            for name, seconds in figures["w1"]["cpu_seconds"].items()
        },
    }


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def versions_on(state: Path) -> dict[str, str]:
    servers = given_or_embedded(state)
    try:
        return versions(servers.database_url)
    finally:
        stop_embedded(state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (a few minutes)")
    parser.add_argument("--only", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--out", type=Path, default=RESULTS / "bench.json")
    parser.add_argument("--report", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite the report from --out, run nothing"
    )
    args = parser.parse_args()
    if args.render_only:
        args.report.write_text(render(json.loads(args.out.read_text())))
        return
    sizes = SMOKE if args.smoke else FULL
    workdir = Path(tempfile.mkdtemp(prefix="itte-bench-"))
    started = time.monotonic()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git("rev-parse", "HEAD"),
        # Uncommitted changes: the figures are then of no commit.
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "machine": describe_machine(),
        "versions": versions_on(workdir / "state-versions"),
        "sizes": asdict(sizes),
    }
    if "w1" in args.only:
        results["w1"] = summarize_w1(bulk_loads(sizes, workdir))
        results["w1"]["before"] = cpu_before(args.out)
    if "w2" in args.only:
        results["w2"] = freshness.run(
            list(sizes.w2_rates), sizes.w2_seconds, workdir, base=sizes.records, reads=True
        )
        print("W2:", json.dumps(results["w2"]))
        results["w2_load"] = freshness.during_load(sizes.records, workdir)
        print("W2 during a load:", json.dumps(results["w2_load"]))
        if sizes.w2_workers:
            results["w2_workers"] = freshness.run(
                list(sizes.w2_rates[-2:]), sizes.w2_seconds / 2, workdir, sizes.w2_workers
            )
    if "w3" in args.only:
        w3 = api.run(
            api.Load(sizes.w3_seconds, sizes.w3_no_cache_seconds, sizes.w3_connections),
            sizes.w3_repeats,
            workdir,
            sizes.w3_data,
        )
        results["w3"] = summarize_w3(w3)
        print("W3:", json.dumps(results["w3"]["median"]))
    if "profile" in args.only:
        results["profile"] = profiled(sizes, workdir)
    results["minutes"] = round((time.monotonic() - started) / 60, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    # From the file, not from memory: the report is what the raw figures say
    # (tests/unit/test_bench_report.py checks the committed pair).
    args.report.write_text(render(json.loads(args.out.read_text())))
    shutil.rmtree(workdir)  # kept, with the services' logs, when a run fails
    print(f"{args.report} written in {results['minutes']} min")


if __name__ == "__main__":
    main()
