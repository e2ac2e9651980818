"""Process settings, read from the environment (and a `.env` file when present)."""

from __future__ import annotations

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
    # Keep serving (with /readyz at 503) this long after SIGTERM before draining.
    shutdown_delay_seconds: float = Field(default=0.0, ge=0)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("DATABASE_URL is not set (trendscope up starts an embedded one)")
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError("REDIS_URL is not set (trendscope up starts an embedded one)")
        return self.redis_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
