from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from common.settings import CommonSettings

DEFAULT_PII_FIELDS = "nom,prenom,nom_declarant,email,telephone,adresse,contact"


class CleanerSettings(CommonSettings):
    pii_fields: str = Field(DEFAULT_PII_FIELDS, description="Comma-separated field names.")
    pii_key: SecretStr | None = Field(
        None, description="HMAC key, 16 bytes or more; local runs generate one in state_dir."
    )
    pii_key_id: str | None = Field(None, description="Default: a fingerprint of the key.")
    unknown_indicators: Literal["rejeter", "non_agregeable"] = Field(
        "rejeter",
        description="Indicators missing from the catalogue: dead-letter, or keep "
        "them at commune level only.",
    )
    clean_batch_records: int = Field(500, ge=1, description="Records per clean message.")
    cleaner_host: str = "127.0.0.1"
    cleaner_port: int = 6066
