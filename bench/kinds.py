"""W1 by file with extremes beside sums: a bulk load of a ``max`` indicator
recomputes the maximum of every territory its records touch, at every batch.

The same generated records (``bench.data``) are loaded under a catalogue
that sums them and under one that takes their maximum, alternating in the
same minutes, and the rates are written side by side with their ratio to
``bench/results/kinds.json``.

    python -m bench.kinds [--records 200000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import w1
from bench.data import RESULTS

KINDS = ("somme", "max")


def run(records: int, rounds: int) -> dict[str, Any]:
    rates: dict[str, list[int]] = {kind: [] for kind in KINDS}
    for round_ in range(rounds):
        for kind in KINDS if round_ % 2 == 0 else KINDS[::-1]:
            with tempfile.TemporaryDirectory(prefix=f"kinds-{kind}-") as workdir:
                result = w1.run("file", records, f"k{kind}", Path(workdir), agregation=kind)
            rates[kind].append(result["records_per_second"])
    ratios = [m / s for m, s in zip(rates["max"], rates["somme"], strict=True)]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "records": records,
        "records_per_second": rates,
        "max_to_somme": round(statistics.median(ratios), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    figures = run(args.records, args.rounds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kinds.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
