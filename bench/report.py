"""BENCHMARKS.md from the figures of one ``bench.run``."""

from __future__ import annotations

from typing import Any

from bench.w1 import UPDATE_RECORDS as UPDATE

NAMES = {
    "itte_file": "itte, by file (`itte ingest`)",
    "itte_http": "itte, by HTTP NDJSON (10,000 records a request)",
    "itte_workers": "itte, by file, 2 cleaners and 2 aggregators (`ITTE_WORKERS=2`)",
    "limit": "(a) limit: confluent-kafka produce → consume → COPY",
    "limit_writes": "(a′) limit doing itte's writes: produce → consume → the set-based statements",
    "pandas": "(b) batch scripts: pandas read_csv → to_sql → groupby per level",
    "naive_faust": "(c) naive faust-streaming, one record per message",
}
# (records/s, p99 ms from the send, API and topic)
W2_TARGETS = ((5_000, 250), (10_000, 500))
TARGETS = {
    "rss_mb": 300,
    "cpu_us_per_record": 40,
    "w1_to_limit": 0.4,
    "w1_to_limit_writes": 0.7,
    "w1_to_pandas": 0.6,
    "w1_to_naive": 10,
    "w2_load_p99_ms": 1000,
    "w3_no_cache_rps": 2000,
    "w3_no_cache_p99_ms": 50,
}


def verdict(met: bool, gap: str) -> str:
    return "**met**" if met else f"**not met**: {gap}"


def needs(have: float, want: float, more_is_better: bool = True) -> str:
    """The gap as a multiple: how many times better the figure must get."""
    if have <= 0 or want <= 0:
        return "no figure"
    return f"needs {want / have if more_is_better else have / want:.1f}×"


def rate_and_p99_gap(rps: float, want_rps: float, p99: float, want_p99: float) -> str:
    """What a target of a rate and a p99 lacks: only the parts not met."""
    parts = []
    if rps < want_rps:
        parts.append(f"{needs(rps, want_rps)} the rate")
    if p99 >= want_p99:
        parts.append(f"{needs(p99, want_p99, more_is_better=False)} the p99")
    return ", ".join(parts)


def ratio_row(label: str, have: float, want: float) -> tuple[str, str, str]:
    return (f"W1 {label}: ≥ {want}×", f"{have:.2f}×", verdict(have >= want, needs(have, want)))


def w1_targets(w1: dict[str, Any]) -> list[tuple[str, str, str]]:
    ratios, rss = w1["ratios"], w1["peak_rss_mb"]
    cpu = w1.get("cpu_us_per_record")
    rows: list[tuple[str, str, str]] = []
    if cpu is not None:
        bound = TARGETS["cpu_us_per_record"]
        rows.append(
            (
                f"W1 by file: CPU of every process (ingest command, services, broker, Postgres) "
                f"≤ {bound} µs a record",
                f"{cpu:.0f} µs a record",
                verdict(cpu <= bound, needs(cpu, bound, more_is_better=False)),
            )
        )
    rows += [
        ratio_row(
            "itte by file ÷ (b) pandas", ratios["itte_file_to_pandas"], TARGETS["w1_to_pandas"]
        ),
        ratio_row("itte by file ÷ (a) limit", ratios["itte_file_to_limit"], TARGETS["w1_to_limit"]),
    ]
    if "itte_file_to_limit_writes" in ratios:
        rows.append(
            ratio_row(
                "itte by file ÷ (a′) limit doing the same writes",
                ratios["itte_file_to_limit_writes"],
                TARGETS["w1_to_limit_writes"],
            )
        )
    rows.append(ratio_row("itte by file ÷ (c) naive faust", ratios["itte_file_to_naive_faust"], 10))
    update = w1["median_update_seconds"]
    ours, theirs = update["itte_file"], update["pandas"]
    rows.append(
        (
            f"W1: ahead of (b), time until {UPDATE:,} corrections after the load are served",
            f"{ours:.2f} s vs {theirs:.1f} s (b re-runs)",
            verdict(ours < theirs, needs(ours, theirs, more_is_better=False)),
        )
    )
    if "itte_workers_to_itte_file" in ratios:
        scaled = ratios["itte_workers_to_itte_file"]
        rows.append(
            (
                "W1 scale-out: 2 cleaners and 2 aggregators at least as fast as 1 of each",
                f"{scaled:.2f}× the rate of 1 of each",
                verdict(scaled >= 1, needs(scaled, 1)),
            )
        )
    totals = w1.get("france_totals")
    if totals:
        rows.append(
            (
                "W1: France totals equal pandas' (exact against floats, within "
                f"{totals['tolerance']:g} of the value)",
                f"{totals['compared']} totals, largest gap {totals['largest_relative_gap']:.1e}",
                verdict(totals["largest_relative_gap"] <= totals["tolerance"], "differ"),
            )
        )
    worst = max(rss, key=lambda s: rss[s])
    rows.append(
        (
            "W1: every service's peak RSS < 300 MB",
            f"highest: {worst} {rss[worst]} MB",
            verdict(rss[worst] < TARGETS["rss_mb"], f"{worst} over by {rss[worst] - 300:.0f} MB"),
        )
    )
    return rows


def w2_targets(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    base = r["w2"].get("base_records", 0)
    for rate, bound in W2_TARGETS:
        at = next((x for x in r["w2"]["runs"] if x["target_records_per_second"] == rate), None)
        if at is None:
            continue
        p99 = max(
            at["api"].get("sent_p99_ms", at["api"].get("p99_ms", float("inf"))),
            at["topic"].get("sent_p99_ms", at["topic"].get("p99_ms", float("inf"))),
        )
        held = f" on {base:,} records" if base else ""
        rows.append(
            (
                f"W2: p99 send → visible ≤ {bound} ms at {rate:,} records/s{held}, "
                "sustained (API and topic)",
                f"{p99:.0f} ms, sustained: {'yes' if at['sustained'] else 'no'}",
                verdict(
                    p99 <= bound and at["sustained"],
                    needs(p99, bound, more_is_better=False) if at["sustained"] else "not sustained",
                ),
            )
        )
    during = r["w2"].get("w3_during")
    if during:
        reads = during["reads"]["untouched"]
        rows.append(
            (
                f"W3 while W2 runs at {during['stream']['target_records_per_second']:,} "
                "records/s: a département query the stream leaves alone, through the cache, "
                "≥ 2,000 req/s, p99 < 25 ms",
                f"{reads['requests_per_second']:,} req/s, p99 {reads['p99_ms']:.1f} ms, "
                f"{reads['errors'] + reads['socket_errors']} errors",
                verdict(
                    reads["requests_per_second"] >= 2000 and reads["p99_ms"] < 25,
                    rate_and_p99_gap(reads["requests_per_second"], 2000, reads["p99_ms"], 25),
                ),
            )
        )
    load = r.get("w2_load")
    if load:
        limit = TARGETS["w2_load_p99_ms"]
        unseen = load["api"]["unseen"] + load["topic"]["unseen"]
        p99 = max(load["api"].get("sent_p99_ms", 0), load["topic"].get("sent_p99_ms", 0))
        rows.append(
            (
                f"W2 during a {load['records_loaded']:,}-record load: one correction every 100 ms, "
                f"p99 send → visible ≤ {limit} ms",
                f"{p99:.0f} ms over {load['corrections']} corrections, {unseen} unseen",
                verdict(
                    p99 <= limit and unseen == 0,
                    needs(p99, limit, more_is_better=False) if not unseen else f"{unseen} unseen",
                ),
            )
        )
    return rows


def w3_targets(w3: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    failed = w3_failures(w3)
    cached = w3["median"]["departement"]["api"]
    rows.append(
        (
            "W3: département query through the cache ≥ 2,000 req/s, p99 < 25 ms, no error",
            f"{cached['requests_per_second']:,.0f} req/s, p99 {cached['p99_ms']:.1f} ms, "
            f"{failed:,} errors",
            verdict(
                cached["requests_per_second"] >= 2000 and cached["p99_ms"] < 25 and failed == 0,
                f"{failed:,} non-2xx answers or socket errors"
                if failed
                else rate_and_p99_gap(cached["requests_per_second"], 2000, cached["p99_ms"], 25),
            ),
        )
    )
    miss = w3["median"]["departement"]["api_no_cache"]
    rps, p99 = miss["requests_per_second"], miss["p99_ms"]
    want_rps, want_p99 = TARGETS["w3_no_cache_rps"], TARGETS["w3_no_cache_p99_ms"]
    rows.append(
        (
            f"W3 uncached: département query, every request a cache miss, ≥ {want_rps:,} req/s "
            f"with p99 < {want_p99} ms",
            f"{rps:,.0f} req/s, p99 {p99:.1f} ms",
            verdict(
                rps >= want_rps and p99 < want_p99,
                rate_and_p99_gap(rps, want_rps, p99, want_p99),
            ),
        )
    )
    return rows


def targets(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    if "w1" in r:
        rows += w1_targets(r["w1"])
    if "w2" in r:
        rows += w2_targets(r)
    if "w3" in r:
        rows += w3_targets(r["w3"])
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
        "## W1 — bulk load until every aggregate is committed and published\n\n"
        + table(["pipeline", "records", "seconds", "records/s", "itte file ÷ it"], rows)
        + f"\nThen {UPDATE:,} corrections to the loaded data, until the aggregates they move "
        "are served (itte: one HTTP request, until the API shows the new France total; (b): the "
        "whole script again on the corrected file), median seconds: "
        + ", ".join(f"{k} {v} s" for k, v in updates.items())
        + ".\n\nRatios, median of the per-repeat ratios "
        "(each repeat runs every pipeline in turn):\n\n"
        + table(["ratio", "value"], [[k, v] for k, v in w1["ratios"].items()])
        + "\nPeak RSS (highest over every W1 run) and CPU time (median of the by-file runs; "
        "every process on the machine's two cores, `itte ingest` included"
        + (
            f": {w1['cpu_us_per_record']:.0f} µs a record in all"
            if "cpu_us_per_record" in w1
            else ""
        )
        + ")"
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
                for p in ("p50_ms", "p99_ms", "sent_p99_ms", "max_ms")
            ),
            x["api"].get("samples", 0),
            x["api"].get("unseen", 0) + x["topic"].get("unseen", 0),
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
    base = w2.get("base_records")
    return (
        heading
        + (f"On a store holding {base:,} records. " if base else "")
        + "Latency to a record's change being visible (ms), per record, from the ingestor's "
        "acknowledgement and (send) from the request's send; percentiles over the records "
        "seen, the others counted as unseen (docs/benchmarks.md, W2).\n\n"
        + cpu_per_correction(w2["runs"])
        + table(
            [
                "target rec/s",
                "sent rec/s",
                "sustained",
                "API p50",
                "API p99",
                "API p99 (send)",
                "API max",
                "topic p50",
                "topic p99",
                "topic p99 (send)",
                "topic max",
                "records seen",
                "unseen",
            ],
            rows,
        )
    )


def cpu_per_correction(runs: list[dict[str, Any]]) -> str:
    """What a correction costs each process at each rate (runs before this
    figure was taken have none: nothing is written then)."""
    measured = [x for x in runs if "cpu_us_per_record" in x]
    if not measured:
        return ""
    names = list(measured[0]["cpu_us_per_record"])
    rows = [
        [
            f"{x['target_records_per_second']:,}",
            *(x["cpu_us_per_record"].get(n, "—") for n in names),
            round(
                sum(v for n, v in x["cpu_us_per_record"].items() if not n.startswith("bench")), 1
            ),
        ]
        for x in measured
    ]
    return (
        "CPU µs per correction, from the first send until every record was seen (the two "
        "cores give 2,000,000 µs a second to share among all of these):\n\n"
        + table(["target rec/s", *names, "itte and its servers"], rows)
        + "\n"
    )


def w3_during_section(during: dict[str, Any]) -> str:
    stream = during["stream"]
    rows = [
        [
            name,
            f"`{x['path']}`",
            f"{x['requests_per_second']:,}",
            x["p50_ms"],
            x["p99_ms"],
            x["errors"] + x["socket_errors"],
        ]
        for name, x in during["reads"].items()
    ]
    return (
        f"## W3 while W2 runs — {stream['target_records_per_second']:,} records/s of "
        f"corrections, wrk reading the API ({during['read_seconds']} s a query)\n\n"
        "Through the response cache, which a commit empties only of the answers that show "
        "what it changed: `untouched` shows a year the corrections leave alone, `corrected` "
        "the one they change (each commit drops it). The stream meanwhile: "
        f"{stream['achieved_records_per_second']:,} records/s sent, API p99 (send) "
        f"{stream['api'].get('sent_p99_ms', '—')} ms, "
        f"sustained: {'yes' if stream['sustained'] else 'no'}.\n\n"
        + table(["query", "path", "req/s", "p50 ms", "p99 ms", "errors"], rows)
    )


def w2_load_section(load: dict[str, Any]) -> str:
    rows = [
        [
            where,
            load[where].get("samples", 0),
            load[where].get("unseen", 0),
            *(load[where].get(p, "—") for p in ("sent_p50_ms", "sent_p99_ms", "sent_max_ms")),
            *(load[where].get(p, "—") for p in ("p50_ms", "p99_ms")),
        ]
        for where in ("api", "topic")
    ]
    return (
        f"## W2 during a bulk load — {load['records_loaded']:,} records by file "
        f"({load['load_seconds']} s), one correction every 100 ms by HTTP\n\n"
        "Each correction is one record; latency (ms) from its send to its value visible in "
        "the API and on the topic (beside: from the acknowledgement).\n\n"
        + table(
            [
                "where",
                "corrections seen",
                "unseen",
                "p50 (send)",
                "p99 (send)",
                "max (send)",
                "p50 (ack)",
                "p99 (ack)",
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
        f"- Date: {r['date']}, whole run {r['minutes']} min"
        + (
            f", commit {r['commit'][:12]}{' with uncommitted changes' if r.get('dirty') else ''}"
            if "commit" in r
            else ""
        )
        + "\n"
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
    if r.get("w2", {}).get("w3_during"):
        parts.append(w3_during_section(r["w2"]["w3_during"]))
    if "w2_load" in r:
        parts.append(w2_load_section(r["w2_load"]))
    if "w2_workers" in r:
        parts.append(w2_section(r["w2_workers"]))
    if "w3" in r:
        parts.append(w3_section(r["w3"]))
    if "profile" in r:
        parts.append(profile_section(r["profile"]))
    return "\n".join(parts)
