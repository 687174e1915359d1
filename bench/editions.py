"""What an older edition of the map costs a reader (issue #29).

Starts a stack (embedded broker and Postgres unless the environment names
servers), loads one indicator for every commune and three years (about
105,000 commune rows) through ``itte ingest``, then asks the API the same
questions on the current edition (the aggregator's rows) and on the 2019
one (computed at the request from the observations), side by side, each
``REPEATS`` times past the API's cache (``Cache-Control: no-cache``). The
median seconds of each and their ratio go to ``bench/results/editions.json``.

    python -m bench.editions
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.data import RESULTS, YEARS
from bench.stack import Stack, every_commune_loaded

PREFIX = "edition"
REPEATS = 5
OLDER = 2019
QUESTIONS: dict[str, dict[str, Any]] = {
    "France": {},
    "every région": {"niveau": "region"},
    "every EPCI": {"niveau": "epci"},
    "the communes of the Gironde": {"niveau": "commune", "departement": "33"},
    "10,000 communes (a full page)": {"niveau": "commune", "limit": 10_000},
}


def seconds(stack: Stack, params: dict[str, Any]) -> tuple[float, int]:
    """The median time of ``REPEATS`` answers, and the rows of the last."""
    times, rows = [], 0
    for _ in range(REPEATS):
        started = time.monotonic()
        answer = httpx.get(
            stack.url("api", "/indicateurs"),
            params={"indicateur": f"{PREFIX}_0", "annee": YEARS[-1], **params},
            headers={"Cache-Control": "no-cache"},
            timeout=300,
        )
        times.append(time.monotonic() - started)
        answer.raise_for_status()
        rows = len(answer.json())
    return statistics.median(times), rows


def main() -> None:
    asked: list[dict[str, Any]] = []
    with every_commune_loaded(PREFIX) as (stack, records):
        for name, params in QUESTIONS.items():
            current, rows = seconds(stack, params)
            older, older_rows = seconds(stack, {**params, "millesime": OLDER})
            asked.append(
                {
                    "ask": name,
                    "rows": rows,
                    f"rows_{OLDER}": older_rows,
                    "current_s": round(current, 4),
                    f"edition_{OLDER}_s": round(older, 4),
                    "ratio": round(older / current, 1),
                }
            )
            print(asked[-1], flush=True)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "records": records,
        "repeats": REPEATS,
        "asked": asked,
    }
    (RESULTS / "editions.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
