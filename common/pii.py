"""Keyed hashing of personal fields (HMAC-SHA-256).

A plain SHA-256 of a name is reversed with a dictionary; a keyed hash is not,
as long as the key stays secret. ``key_id`` names the key in every record so
keys can rotate without mixing hashes.

Personal fields are hashed at the edge: the ingestor replaces them before
publishing (HTTP, files, pulls), the cleaner for records that producers write
straight into Kafka. A value already in the hashed form is kept as it is, so
both can hold the same key without hashing twice.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from common.settings import PiiSettings


PREFIX = "hmac-sha256:"
HASHED = re.compile(r"hmac-sha256:[0-9a-f]{64}")


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
        """The keyed hash (hex); a value already hashed is its own digest."""
        if isinstance(value, str) and HASHED.fullmatch(value):
            return value.removeprefix(PREFIX)
        # surrogatepass: a lone surrogate still hashes (it never rests in clear)
        data = normalize(value).encode("utf-8", "surrogatepass")
        return hmac.new(self.key, data, hashlib.sha256).hexdigest()

    def hide(self, record: dict[str, object]) -> dict[str, object]:
        """``record`` with each personal field replaced by ``hmac-sha256:<hex>``."""
        if self.fields.isdisjoint(record):  # most records: no copy (bulk loads)
            return record
        hashes = self.hash_fields(record)
        return {k: f"{PREFIX}{hashes[k]}" if k in hashes else v for k, v in record.items()}

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


def hasher_for(settings: PiiSettings) -> PiiHasher:
    """The configured key; a local run without one gets a generated key kept
    in the state folder, a production run refuses to start."""
    if settings.pii_key is not None:
        key = settings.pii_key.get_secret_value().encode()
    elif settings.environment == "local":
        key = local_key(settings.state_dir / "pii.key")
    else:
        raise SystemExit("ITTE_PII_KEY must be set outside local runs")
    return PiiHasher.create(key, settings.pii_fields.split(","), settings.pii_key_id)
