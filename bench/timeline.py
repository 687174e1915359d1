"""Where a bulk load waits: the cores each process uses, second by second.

One W1 load by file (``bench.w1.run`` with ``timeline``); a line a second
with the cores used by the cleaner(s), the aggregator(s), Postgres and the
broker. A stage near 1.0 is bound by its own CPU (one Python thread); stages
that together stay under the machine's cores wait for each other.

    python -m bench.timeline [--records 200000] [--workers 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench import w1

SHOWN = ("cleaner", "cleaner-2", "aggregator", "aggregator-2", "postgres", "broker")


def render(rows: list[dict[str, float]]) -> str:
    names = [n for n in SHOWN if any(n in row for row in rows)]
    lines = ["  t (s)  " + "  ".join(f"{n:>12}" for n in names)]
    for row in rows:
        lines.append(f"{row['t']:7.1f}  " + "  ".join(f"{row.get(n, 0):12.2f}" for n in names))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = w1.run("file", args.records, "t", Path(tmp), workers=args.workers, timeline=True)
    print(render(result["cores_by_second"]))
    print(f"{result['records_per_second']} records/s; CPU seconds: {result['cpu_seconds']}")


if __name__ == "__main__":
    main()
