"""Process settings, read from the environment (and a `.env` file when present)."""

from __future__ import annotations

import base64
import hashlib
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    # None means "start the embedded server" (only `trendscope up` does that).
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str = Field(default="dev-insecure-change-me-0123456789abcdef", min_length=32)
    jwt_issuer: str = "trendscope"
    jwt_audience: str = "trendscope-api"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    data_dir: Path = Path(".trendscope")
    db_pool_min: int = 1
    db_pool_max: int = 10
    # Behind PgBouncer in transaction mode the statement cache must be off (design.md).
    db_statement_cache_size: int = 100
    # Set when DATABASE_URL points at PgBouncer (transaction mode): forces the cache to 0.
    database_pgbouncer: bool = False
    arq_queue_name: str = "trendscope:arq"
    dramatiq_namespace: str = "trendscope-dramatiq"
    import_batch_size: int = Field(default=500, ge=1, le=10_000)
    import_max_bytes: int = 20 * 1024 * 1024
    max_page_size: int = 100
    subscription_queue_size: int = 256
    log_level: str = "INFO"
    # Fernet keys (comma-separated, the first is current) that encrypt platform credentials at
    # rest; rotate by prepending a new key. Required in production; elsewhere a key derived
    # from SECRET_KEY is used, with a warning.
    credential_keys: str | None = None
    # Collection: platform API base URLs to override (JSON, e.g. {"youtube": "http://..."}) for
    # staging or test fakes; comments are fetched for the newest N posts of the last D days.
    connector_base_urls: dict[str, str] = Field(default_factory=dict)
    collect_comment_posts: int = Field(default=10, ge=0, le=100)
    collect_comment_days: int = Field(default=7, ge=0, le=90)
    collect_interval_hours: int = Field(default=24, ge=1)  # per-tenant schedule (plans: later)
    # Keep serving (with /readyz at 503) this long after SIGTERM before draining.
    shutdown_delay_seconds: float = Field(default=0.0, ge=0)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("DATABASE_URL is not set (trendscope up starts an embedded one)")
        return self.database_url

    def credential_key_list(self) -> list[str]:
        keys = [k.strip() for k in (self.credential_keys or "").split(",") if k.strip()]
        if keys:
            return keys
        if self.is_production:
            raise RuntimeError(
                "CREDENTIAL_KEYS is not set: generate one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            )
        warnings.warn(
            "CREDENTIAL_KEYS is not set: platform credentials are encrypted with a key derived "
            "from SECRET_KEY (development only)",
            stacklevel=2,
        )
        digest = hashlib.sha256(b"trendscope-credentials:" + self.secret_key.encode()).digest()
        return [base64.urlsafe_b64encode(digest).decode()]

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError("REDIS_URL is not set (trendscope up starts an embedded one)")
        return self.redis_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
