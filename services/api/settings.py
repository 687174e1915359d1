from __future__ import annotations

from pydantic import Field

from common.settings import CommonSettings
from services.api.streaming import SEND_TIMEOUT_SECONDS


class ApiSettings(CommonSettings):
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_pool_size: int = 10
    api_workers: int = Field(1, ge=1, description="uvicorn worker processes.")
    api_cache_mb: int = Field(
        64, ge=0, description="Responses kept until the data changes, per worker; 0: off."
    )
    api_cors_origins: list[str] = Field(
        [], description='Origins whose pages may call the API, e.g. ["https://example.fr"].'
    )
    api_statement_timeout_ms: int = Field(
        10_000, ge=100, description="Longest statement of any request (503 beyond)."
    )
    api_send_timeout_seconds: float = Field(
        SEND_TIMEOUT_SECONDS,
        gt=0,
        description="A CSV export is cut when its reader takes longer for one chunk.",
    )
    api_max_streams: int = Field(
        100, ge=1, description="Open /indicateurs/flux streams per worker (503 beyond)."
    )
    api_streams_per_client: int = Field(
        10, ge=1, description="Open /indicateurs/flux streams per client address (429 beyond)."
    )
