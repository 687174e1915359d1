"""BENCHMARKS.md from the figures of one ``bench.run``."""

from __future__ import annotations

from typing import Any

from bench.w1 import UPDATE_RECORDS as UPDATE

NAMES = {
    "itte_file": "itte, by file (`itte ingest`)",
    "itte_http": "itte, by HTTP NDJSON (10,000 records a request)",
    "itte_workers": "itte, by file, 2 cleaners and 2 aggregators (`ITTE_WORKERS=2`)",
    "limit": "(a) limit: confluent-kafka produce → consume → COPY",
    "pandas": "(b) batch scripts: pandas read_csv → to_sql → groupby per level",
    "naive_faust": "(c) naive faust-streaming, one record per message",
}
W2_TARGETS = ((5_000, 500), (10_000, 200))  # (records/s, p99 ms)
TARGETS = {
    "rss_mb": 300,
    "w1_to_limit": 0.75,
    "w1_to_pandas": 0.7,
    "w1_to_naive": 10,
    "w3_rps": 2000,
    "w3_p99_ms": 25,
}


def verdict(met: bool, gap: str) -> str:
    return "**met**" if met else f"**not met**: {gap}"


def targets(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    if "w1" in r:
        ratios, rss = r["w1"]["ratios"], r["w1"]["peak_rss_mb"]
        for mode in ("itte_file", "itte_http"):
            to_limit, to_naive = ratios[f"{mode}_to_limit"], ratios[f"{mode}_to_naive_faust"]
            to_pandas = ratios[f"{mode}_to_pandas"]
            update = r["w1"]["median_update_seconds"]
            ours, theirs = update[mode], update["pandas"]
            want_limit, want_pandas = TARGETS["w1_to_limit"], TARGETS["w1_to_pandas"]
            rows += [
                (
                    f"W1 {mode}: ≥ {want_limit:.0%} of (a)",
                    f"{to_limit:.0%} of (a)",
                    verdict(to_limit >= want_limit, f"{want_limit - to_limit:.0%} short"),
                ),
                (
                    f"W1 {mode}: bulk load from empty ≥ {want_pandas}× (b)",
                    f"{to_pandas:.2f}× (b)'s rate",
                    verdict(to_pandas >= want_pandas, f"{want_pandas - to_pandas:.2f}× short"),
                ),
                (
                    f"W1 {mode}: ≥ 10× (c)",
                    f"{to_naive:.1f}×",
                    verdict(to_naive >= TARGETS["w1_to_naive"], f"{10 - to_naive:.1f}× short"),
                ),
                (
                    f"W1 {mode}: ahead of (b), time until updated aggregates are served "
                    f"({UPDATE:,} corrections after the load)",
                    f"{ours:.2f} s vs {theirs:.1f} s (b re-runs)",
                    verdict(ours < theirs, f"{ours - theirs:.1f} s behind"),
                ),
            ]
        if "itte_workers_to_itte_file" in ratios:
            scaled = ratios["itte_workers_to_itte_file"]
            rows.append(
                (
                    "W1 scale-out: 2 cleaners and 2 aggregators at least as fast as 1 of each",
                    f"{scaled:.2f}× the rate of 1 of each",
                    verdict(scaled >= 1, f"{1 - scaled:.0%} slower"),
                )
            )
        worst = max(rss, key=lambda s: rss[s])
        rows.append(
            (
                "W1: every service's peak RSS < 300 MB",
                f"highest: {worst} {rss[worst]} MB",
                verdict(
                    rss[worst] < TARGETS["rss_mb"], f"{worst} over by {rss[worst] - 300:.0f} MB"
                ),
            )
        )
    if "w2" in r:
        for rate, bound in W2_TARGETS:
            at = next((x for x in r["w2"]["runs"] if x["target_records_per_second"] == rate), None)
            if at is None:
                continue
            p99 = max(
                at["api"].get("p99_ms", float("inf")), at["topic"].get("p99_ms", float("inf"))
            )
            rows.append(
                (
                    f"W2: p99 < {bound} ms at {rate:,} records/s, sustained (API and topic)",
                    f"{p99:.0f} ms, sustained: {'yes' if at['sustained'] else 'no'}",
                    verdict(
                        p99 < bound and at["sustained"],
                        f"{p99 - bound:.0f} ms over" if at["sustained"] else "not sustained",
                    ),
                )
            )
    if "w3" in r:
        api = r["w3"]["median"]["departement"]["api"]
        rps, p99 = api["requests_per_second"], api["p99_ms"]
        failed = w3_failures(r["w3"])
        rows.append(
            (
                "W3: département query ≥ 2,000 req/s with p99 < 25 ms, no error in any run",
                f"{rps:,.0f} req/s, p99 {p99:.1f} ms, {failed:,} errors",
                verdict(
                    rps >= TARGETS["w3_rps"] and p99 < TARGETS["w3_p99_ms"] and failed == 0,
                    f"{rps / 2000:.0%} of the rate, p99 {p99 / 25:.1f}× the bound, "
                    f"{failed:,} non-2xx answers or socket errors",
                ),
            )
        )
    return rows


def w3_failures(w3: dict[str, Any]) -> int:
    """Non-2xx answers and socket errors wrk saw, over every API run."""
    return sum(
        run[side].get("errors", 0) + run[side].get("socket_errors", 0)
        for runs in w3["runs"].values()
        for run in runs
        for side in ("api", "api_no_cache")
    )


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def w1_section(w1: dict[str, Any], sizes: dict[str, Any]) -> str:
    rates, seconds = w1["median_records_per_second"], w1["median_seconds"]
    rows = [
        [
            NAMES[name],
            f"{sizes['naive_records' if name == 'naive_faust' else 'records']:,}",
            f"{seconds[name]:.1f}",
            f"{rates[name]:,.0f}",
            f"{rates['itte_file'] / rates[name]:.2f}",
        ]
        for name in NAMES
        if name in rates
    ]
    services = list(w1["peak_rss_mb"])
    before = w1.get("before")  # the previous run's CPU per record, to compare with
    updates = w1["median_update_seconds"]
    return (
        "## W1 — bulk load until every aggregate is committed\n\n"
        + table(["pipeline", "records", "seconds", "records/s", "itte file ÷ it"], rows)
        + f"\nThen {UPDATE:,} corrections to the loaded data, until the aggregates they move "
        "are served (itte: one HTTP request, until the API shows the new France total; (b): the "
        "whole script again on the corrected file), median seconds: "
        + ", ".join(f"{k} {v} s" for k, v in updates.items())
        + ".\n\nRatios, median of the per-repeat ratios "
        "(each repeat runs every pipeline in turn):\n\n"
        + table(["ratio", "value"], [[k, v] for k, v in w1["ratios"].items()])
        + "\nPeak RSS (highest over every W1 run) and CPU time (median of the by-file runs; "
        "the `itte ingest` process itself is not counted)"
        + (f", beside the CPU per record of the run of {before['date']}" if before else "")
        + ":\n\n"
        + table(
            ["process", "peak RSS MB", "CPU s", "CPU µs per record"]
            + (["before: µs per record"] if before else []),
            [
                [
                    s,
                    w1["peak_rss_mb"].get(s, "—"),
                    w1["cpu_seconds"].get(s, "—"),
                    f"{1e6 * w1['cpu_seconds'][s] / sizes['records']:.0f}"
                    if s in w1["cpu_seconds"]
                    else "—",
                ]
                + ([before["cpu_us_per_record"].get(s, "—")] if before else [])
                for s in services + [s for s in w1["cpu_seconds"] if s not in services]
            ],
        )
        + (
            "\nPeak RSS of each process with 2 cleaners and 2 aggregators: "
            + ", ".join(f"{k} {v} MB" for k, v in w1["peak_rss_mb_workers"].items())
            + ".\n"
            if "peak_rss_mb_workers" in w1
            else ""
        )
    )


def w2_section(w2: dict[str, Any]) -> str:
    workers = w2.get("workers", 1)
    rows = [
        [
            f"{x['target_records_per_second']:,}",
            f"{x['achieved_records_per_second']:,}",
            "yes" if x["sustained"] else "no",
            *(
                x[where].get(p, "—")
                for where in ("api", "topic")
                for p in ("p50_ms", "p99_ms", "max_ms")
            ),
            x["api"].get("samples", 0),
        ]
        for x in w2["runs"]
    ]
    heading = (
        f"## W2 — freshness, corrections for {w2['seconds']:.0f} s at each rate\n\n"
        if workers == 1
        else f"## W2 with {workers} cleaners and {workers} aggregators "
        f"(`ITTE_WORKERS={workers}`), {w2['seconds']:.0f} s at each rate\n\n"
        "Not a target: what scale-out does to freshness.\n\n"
    )
    return (
        heading
        + "Latency from the ingestor's acknowledgement of a record to its change being visible "
        "(ms), per acknowledged record (docs/benchmarks.md, W2).\n\n"
        + table(
            [
                "target rec/s",
                "sent rec/s",
                "sustained",
                "API p50",
                "API p99",
                "API max",
                "topic p50",
                "topic p99",
                "topic max",
                "records seen",
            ],
            rows,
        )
    )


def w3_section(w3: dict[str, Any]) -> str:
    rows = [
        [
            name,
            side,
            f"{m['requests_per_second']:,.0f}",
            f"{m['p50_ms']:.2f}",
            f"{m['p99_ms']:.2f}",
        ]
        for name, sides in w3["median"].items()
        for side, m in sides.items()
    ]
    ratios = [
        [
            name,
            f"{s['api']['requests_per_second'] / s['psycopg']['requests_per_second']:.2f}",
            f"{s['api_no_cache']['requests_per_second'] / s['psycopg']['requests_per_second']:.2f}",
        ]
        for name, s in w3["median"].items()
    ]
    return (
        f"## W3 — API under wrk, {w3['connections']} connections, {w3['seconds']} s a run "
        f"({w3['no_cache_seconds']} s for api_no_cache)\n\n"
        + table(["query", "through", "requests/s", "p50 ms", "p99 ms"], rows)
        + "\nAPI ÷ the same SQL through psycopg (requests/s):\n\n"
        + table(["query", "API", "API, no-cache"], ratios)
    )


def profile_section(p: dict[str, Any]) -> str:
    out = (
        f"## Profile — where the time goes ({p['records']:,} records by file, py-spy)\n\n"
        f"CPU seconds during the load: "
        + ", ".join(f"{k} {v}" for k, v in p["cpu_seconds"].items())
        + f". Slowest stage (most CPU): **{p['slowest_stage']}**.\n\n"
    )
    for service in (p["slowest_stage"], *(s for s in p["services"] if s != p["slowest_stage"])):
        if service not in p["services"]:
            continue
        s = p["services"][service]
        out += f"### {service} ({s['samples']} samples while busy)\n\n"
        out += table(["own time in", "%"], [list(x) for x in s["self_by_package"][:8]]) + "\n"
        if service == p["slowest_stage"]:
            out += table(
                ["our function (and below)", "%"], [list(x) for x in s["our_functions"][:10]]
            )
            out += "\n"
    return out


def render(r: dict[str, Any]) -> str:
    machine, sizes = r["machine"], r["sizes"]
    parts = [
        "# Benchmarks\n\n"
        "Written by `make bench` (`python -m bench.run`); do not edit by hand. Method and "
        "reading notes: [docs/benchmarks.md](docs/benchmarks.md).\n\n"
        f"- Date: {r['date']}, whole run {r['minutes']} min\n"
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"{machine['system']} (shared: every process below runs on it)\n"
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()) + "\n"
        f"- Sizes: {sizes}\n"
    ]
    rows = targets(r)
    if rows:
        parts.append(
            "## Targets\n\n" + table(["target", "measured", "verdict"], [list(x) for x in rows])
        )
    if "w1" in r:
        parts.append(w1_section(r["w1"], sizes))
    if "w2" in r:
        parts.append(w2_section(r["w2"]))
    if "w2_workers" in r:
        parts.append(w2_section(r["w2_workers"]))
    if "w3" in r:
        parts.append(w3_section(r["w3"]))
    if "profile" in r:
        parts.append(profile_section(r["profile"]))
    return "\n".join(parts)
