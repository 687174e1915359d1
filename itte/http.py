"""Reading the services' HTTP answers from the command line."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class Unavailable(Exception):
    """No answer: the message says why (the status and the service's detail)."""


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 60) -> bytes:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as error:
        raise Unavailable(f"{error.code}: {detail(error.read())}") from None
    except (urllib.error.URLError, OSError) as error:
        raise Unavailable(f"{url} does not answer: {error}") from None


def detail(body: bytes) -> Any:
    try:
        return json.loads(body)["detail"]
    except (ValueError, KeyError, TypeError):
        return body[:200].decode(errors="replace")
