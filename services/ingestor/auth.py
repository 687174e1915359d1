"""Producer authentication: bearer tokens, kept only as SHA-256 hashes.

Tokens are random (``itte token NAME`` makes one), so a plain SHA-256 cannot be
reversed by a dictionary; the configuration never holds a usable secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

PREFIX = "sha256:"


def hash_token(token: str) -> str:
    return PREFIX + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "itte_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Producers:
    """Producer name → hashed token. Empty: authentication is off (local runs)."""

    hashes: dict[str, str]

    @classmethod
    def parse(cls, config: str | None) -> Producers:
        """``{"name": "sha256:<hex>", ...}`` (JSON), as ITTE_PRODUCER_TOKENS holds it."""
        if not config:
            return cls({})
        hashes = json.loads(config)
        if not isinstance(hashes, dict) or not all(
            isinstance(v, str) and v.startswith(PREFIX) and len(v) == len(PREFIX) + 64
            for v in hashes.values()
        ):
            raise ValueError('ITTE_PRODUCER_TOKENS must be {"producer": "sha256:<64 hex>", ...}')
        return cls(dict(hashes))

    @property
    def required(self) -> bool:
        return bool(self.hashes)

    def identify(self, authorization: str | None) -> str | None:
        """The producer a ``Bearer`` header belongs to, or None."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        presented = hash_token(token.strip())
        found = None
        for name, expected in self.hashes.items():  # compare all: no timing hint
            if hmac.compare_digest(presented, expected):
                found = name
        return found
