"""``itte rejets``: what became of a pushed batch, read as its producer reads
it (``GET /observations/{batch_id}`` with the producer's token)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from services.ingestor.status import BatchStatus


class Unavailable(Exception):
    """No answer about the batch: the message says why."""


def fetch(base_url: str, batch_id: str, token: str | None, timeout: float = 30) -> BatchStatus:
    url = f"{base_url.rstrip('/')}/observations/{urllib.parse.quote(batch_id, safe='')}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return BatchStatus.model_validate_json(response.read())
    except urllib.error.HTTPError as error:
        raise Unavailable(f"{error.code}: {_detail(error.read())}") from None
    except (urllib.error.URLError, OSError) as error:
        raise Unavailable(f"the ingestor at {base_url} does not answer: {error}") from None


def _detail(body: bytes) -> Any:
    try:
        return json.loads(body)["detail"]
    except (ValueError, KeyError, TypeError):
        return body[:200].decode(errors="replace")


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
