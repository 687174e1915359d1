"""Figures over samples, shared by the workloads."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """The sample at ``q`` (0.5: the median) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]
