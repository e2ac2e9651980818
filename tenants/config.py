"""Tortoise configuration: two apps, `public` (shared registry) and `tenant` (per schema)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

PUBLIC_MODELS = [
    "tenants.models",
    "domain.accounts.models",
    "billing.models",
    "domain.audit.models",
    "domain.apikeys.models",
]
TENANT_MODELS = [
    "domain.influencers.models",
    "domain.posts.models",
    "domain.collection.models",
    "domain.analytics.models",
    "domain.insights.models",
    "domain.trends.models",
    "domain.webhooks.models",
]


def tortoise_config(
    database_url: str,
    *,
    pool_min: int = 1,
    pool_max: int = 10,
    statement_cache_size: int = 100,
    acquire_timeout: float = 5.0,
    server_settings: dict[str, str] | None = None,
) -> dict[str, Any]:
    url = urlparse(database_url)
    credentials: dict[str, Any] = {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password or "",
        "database": (url.path or "/postgres").lstrip("/") or "postgres",
        "minsize": pool_min,
        "maxsize": pool_max,
        "statement_cache_size": statement_cache_size,
        "acquire_timeout": acquire_timeout,
    }
    if server_settings:
        credentials["server_settings"] = server_settings
    return {
        "connections": {"default": {"engine": "tenants.pgclient", "credentials": credentials}},
        "apps": {
            "public": {
                "models": PUBLIC_MODELS,
                "default_connection": "default",
                "migrations": "migrations.public",
            },
            "tenant": {
                "models": TENANT_MODELS,
                "default_connection": "default",
                "migrations": "migrations.tenant",
            },
        },
        "use_tz": True,
        "timezone": "UTC",
    }
