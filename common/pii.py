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

import functools
import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from common.settings import PiiSettings


PREFIX = "hmac-sha256:"
NAME_CHARS = 200  # longest field name compared
HASHED = re.compile(r"hmac-sha256:[0-9a-f]{64}")


def normalize(value: object) -> str:
    """Case and surrounding blanks must not change who a value points to."""
    return " ".join(str(value).split()).casefold()


def key_fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"itte-pii-key-id:" + key).hexdigest()[:12]


@functools.lru_cache(maxsize=4096)
def field_key(name: str) -> str:
    """How field and column names compare when deciding what is personal:
    case, accents, blanks and punctuation aside, so that ``E-mail``,
    ``Téléphone`` and ``NOM DECLARANT`` are ``email``, ``telephone`` and
    ``nom_declarant``. Names repeat from record to record: cached."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.casefold() if c.isalnum())


@dataclass(frozen=True)
class PiiHasher:
    key: bytes
    key_id: str
    fields: frozenset[str]  # as configured
    keys: frozenset[str] = field(init=False)  # their field_key

    def __post_init__(self) -> None:
        keys = frozenset(k for k in map(field_key, self.fields) if k)
        object.__setattr__(self, "keys", keys)  # frozen: derived once here

    @classmethod
    def create(cls, key: bytes, fields: Iterable[str], key_id: str | None = None) -> PiiHasher:
        if len(key) < 16:
            raise ValueError("the PII key must be at least 16 bytes")
        return cls(
            key=key,
            key_id=key_id or key_fingerprint(key),
            fields=frozenset(f.strip() for f in fields if f.strip()),
        )

    def is_personal(self, name: object) -> bool:
        """Whether a field or column of this name holds personal data."""
        # No field name is this long; a hostile one is not kept in the cache.
        return isinstance(name, str) and len(name) <= NAME_CHARS and field_key(name) in self.keys

    def digest(self, value: object) -> str:
        """The keyed hash (hex); a value already hashed is its own digest."""
        if isinstance(value, str) and HASHED.fullmatch(value):
            return value.removeprefix(PREFIX)
        # surrogatepass: a lone surrogate still hashes (it never rests in clear)
        data = normalize(value).encode("utf-8", "surrogatepass")
        return hmac.new(self.key, data, hashlib.sha256).hexdigest()

    def hide(self, record: dict[str, object]) -> dict[str, object]:
        """``record`` with each personal field replaced by ``hmac-sha256:<hex>``."""
        hashes = self.hash_fields(record)
        if not hashes:  # most records: no copy (bulk loads)
            return record
        return {k: f"{PREFIX}{hashes[k]}" if k in hashes else v for k, v in record.items()}

    def hash_fields(self, record: dict[str, object]) -> dict[str, str]:
        """Hashes of the personal fields present (and non-empty) in ``record``,
        and of its ``valeur`` when its indicator is named like a personal
        field (a table's column ``email`` read as a measure, say)."""
        hashes = {
            name: self.digest(value)
            for name, value in record.items()
            if self.is_personal(name) and value not in (None, "")
        }
        valeur = record.get("valeur")
        if valeur not in (None, "") and self.is_personal(record.get("indicateur")):
            hashes["valeur"] = self.digest(valeur)
        return hashes

    def any_personal(self, names: Iterable[object]) -> bool:
        return any(map(self.is_personal, names))


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
    elif settings.local:
        key = local_key(settings.state_dir / "pii.key")
    else:
        raise SystemExit(settings.missing("ITTE_PII_KEY is not set: 32 random bytes, hex"))
    return PiiHasher.create(key, settings.pii_fields.split(","), settings.pii_key_id)
