"""Memory of the API under its largest answers (issue #30, point 6).

Starts a stack (embedded broker and Postgres unless the environment names
servers), loads one indicator for every commune and three years (about
105,000 commune rows) through ``itte ingest``, then asks the API, from the
cheapest answer to the dearest: the whole CSV export (streamed), pages of
1,000 rows, the largest page allowed, that page asked by ``CONCURRENT``
clients at once (each at its own offset: no answer from the cache), and a
page of 100,000 rows (refused, 422, once the cap holds). After each: the
status, the bytes, the time and the API's peak RSS so far (``VmHWM``, which
only grows: hence the order), written to ``bench/results/page_memory.json``.

    python -m bench.page_memory
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from bench.data import memory_report
from bench.stack import Stack, every_commune_loaded, peak_rss_mb
from services.api.deps import MAX_LIMIT

PREFIX = "page"
CONCURRENT = 10
TARGET_MB = 300


def ask(stack: Stack, **params: str | int) -> dict[str, Any]:
    started = time.monotonic()
    answer = httpx.get(
        stack.url("api", "/indicateurs"),
        params={"indicateur": f"{PREFIX}_0", "niveau": "commune", **params},
        timeout=300,
    )
    return {
        "status": answer.status_code,
        "bytes": len(answer.content),
        "seconds": round(time.monotonic() - started, 2),
    }


def main() -> None:
    steps: list[dict[str, Any]] = []
    with every_commune_loaded(PREFIX) as (stack, records):
        pid = stack.processes["api"].pid
        idle = peak_rss_mb(pid)

        def step(name: str, answers: list[dict[str, Any]]) -> None:
            steps.append({"ask": name, "answers": answers, "peak_rss_mb": peak_rss_mb(pid)})
            print(steps[-1]["ask"], answers[0], steps[-1]["peak_rss_mb"], flush=True)

        step("every row as CSV (streamed)", [ask(stack, format="csv")])
        step("a page of 1,000 rows", [ask(stack, limit=1_000)])
        step(f"a page of {MAX_LIMIT:,} rows (the cap)", [ask(stack, limit=MAX_LIMIT)])
        with ThreadPoolExecutor(CONCURRENT) as pool:
            answers = list(
                pool.map(lambda i: ask(stack, limit=MAX_LIMIT, offset=i), range(CONCURRENT))
            )
        step(f"{CONCURRENT} pages of {MAX_LIMIT:,} rows at once", answers)
        step("a page of 100,000 rows", [ask(stack, limit=100_000)])
    memory_report("page_memory", idle, TARGET_MB, "steps", steps, rows=records, cap=MAX_LIMIT)


if __name__ == "__main__":
    main()
