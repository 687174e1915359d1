"""Keyed hashing of personal fields (HMAC-SHA-256).

A plain SHA-256 of a name is reversed with a dictionary; a keyed hash is not,
as long as the key stays secret. ``key_id`` names the key in every record so
keys can rotate without mixing hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


def normalize(value: object) -> str:
    """Case and surrounding blanks must not change who a value points to."""
    return " ".join(str(value).split()).casefold()


def key_fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"itte-pii-key-id:" + key).hexdigest()[:12]


@dataclass(frozen=True)
class PiiHasher:
    key: bytes
    key_id: str
    fields: frozenset[str]

    @classmethod
    def create(cls, key: bytes, fields: Iterable[str], key_id: str | None = None) -> PiiHasher:
        if len(key) < 16:
            raise ValueError("the PII key must be at least 16 bytes")
        return cls(
            key=key,
            key_id=key_id or key_fingerprint(key),
            fields=frozenset(f.strip() for f in fields if f.strip()),
        )

    def digest(self, value: object) -> str:
        return hmac.new(self.key, normalize(value).encode("utf-8"), hashlib.sha256).hexdigest()

    def hash_fields(self, record: dict[str, object]) -> dict[str, str]:
        """Hashes of the personal fields present (and non-empty) in ``record``."""
        return {
            name: self.digest(value)
            for name, value in record.items()
            if name in self.fields and value not in (None, "")
        }


def local_key(path: Path) -> bytes:
    """The key kept at ``path`` (owner-only), generated at the first call: for
    local runs only, where no key is configured."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip().encode()
