"""Where a service's time goes, from a py-spy raw profile (collapsed stacks)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

OURS = ("itte/", "common/", "services/", "schemas/")
# Entry points every sample goes through: they say nothing of where time goes.
WRAPPERS = ("(itte/__main__.py)", "(itte/cli.py)", "run (common/faust_app.py)")


def package(frame: str) -> str:
    """``function (pydantic/main.py)`` → ``pydantic``; the standard library and
    extension modules keep their module name."""
    where = frame.rpartition("(")[2].rstrip(")")
    top = where.split("/")[0]
    return top.removesuffix(".py") or "?"


def summarize(raw: Path, top: int = 12) -> dict[str, object]:
    """Self time by package, and the heaviest of our functions (time spent in
    them and below), as percentages of the samples taken while busy."""
    own: Counter[str] = Counter()
    below: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n, frames = int(count), stack.split(";")
        samples += n
        own[package(frames[-1])] += n
        for frame in set(frames):
            if any(p in frame for p in OURS) and not any(w in frame for w in WRAPPERS):
                below[frame] += n

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / samples, 1)) for name, n in counter.most_common(top)]

    return {"samples": samples, "self_by_package": shares(own), "our_functions": shares(below)}
