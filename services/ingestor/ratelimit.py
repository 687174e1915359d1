"""Per-producer request limits (the ``limits`` library's moving window), kept
in this process's memory: with several ingestor replicas, each admits up to
the limit."""

from __future__ import annotations

import time

from limits import parse, storage, strategies


class MovingWindow:
    def __init__(self, limit: str) -> None:
        """``limit``: e.g. ``"60/minute"`` or ``"5 per second"``."""
        self._item = parse(limit)
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def admit(self, producer: str) -> float | None:
        if self._limiter.hit(self._item, producer):
            return None
        reset = self._limiter.get_window_stats(self._item, producer).reset_time
        return max(reset - time.time(), 0.0)
