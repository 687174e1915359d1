from __future__ import annotations

import secrets
from typing import Literal

from pydantic import Field, SecretStr

from itte.settings import CommonSettings
from services.cleaner.pii import PiiHasher

DEFAULT_PII_FIELDS = "nom,prenom,nom_declarant,email,telephone,adresse,contact"


class CleanerSettings(CommonSettings):
    pii_fields: str = Field(DEFAULT_PII_FIELDS, description="Comma-separated field names.")
    pii_key: SecretStr | None = Field(None, description="HMAC key, 16 bytes or more.")
    pii_key_id: str | None = Field(None, description="Default: a fingerprint of the key.")
    unknown_indicators: Literal["rejeter", "non_agregeable"] = Field(
        "rejeter",
        description="Indicators missing from the catalogue: dead-letter, or keep "
        "them at commune level only.",
    )
    clean_batch_records: int = Field(500, ge=1, description="Records per clean message.")
    cleaner_host: str = "127.0.0.1"
    cleaner_port: int = 6066

    def hasher(self) -> PiiHasher:
        """The configured key; a local run without one gets a generated key kept
        in the state folder, a production run refuses."""
        fields = self.pii_fields.split(",")
        if self.pii_key is not None:
            return PiiHasher.create(
                self.pii_key.get_secret_value().encode(), fields, self.pii_key_id
            )
        if self.environment != "local":
            raise ValueError("ITTE_PII_KEY must be set outside local runs")
        path = self.state_dir / "pii.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(32))
        return PiiHasher.create(path.read_text().strip().encode(), fields, self.pii_key_id)
