"""``itte batch``: what became of a pushed batch, read as its producer reads
it (``GET /observations/{batch_id}`` with the producer's token)."""

from __future__ import annotations

import urllib.parse

from itte.http import Unavailable, get
from services.ingestor.status import BatchStatus

__all__ = ["Unavailable", "fetch", "render"]


def fetch(base_url: str, batch_id: str, token: str | None, timeout: float = 30) -> BatchStatus:
    url = f"{base_url.rstrip('/')}/observations/{urllib.parse.quote(batch_id, safe='')}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return BatchStatus.model_validate_json(get(url, headers, timeout))


def render(status: BatchStatus) -> list[str]:
    state = "complete" if status.complete else f"{status.pending} pending"
    lines = [
        f"batch {status.batch_id} (received {status.received_at:%Y-%m-%d %H:%M:%S %Z}): "
        f"{status.accepted} accepted, {status.clean} clean, "
        f"{status.dead_lettered} dead-lettered, {state}; "
        f"{status.refused} refused in the request"
    ]
    for r in status.rejected:
        where = "whole message" if r.line is None else f"line {r.line}"
        lines.append(f"{where} [{r.stage}] {r.reason}: {r.detail}")
    return lines
