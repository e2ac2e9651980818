"""The Dramatiq broker (Redis), configured from settings when first imported."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO

from core.logging import configure_logging
from core.settings import get_settings

_settings = get_settings()
configure_logging(_settings)  # a Dramatiq worker process started without `trendscope`
broker = RedisBroker(
    url=os.environ.get("REDIS_URL") or _settings.redis_url or "redis://127.0.0.1:6379/0",
    namespace=_settings.dramatiq_namespace,
)
broker.add_middleware(AsyncIO())
if os.environ.get("DRAMATIQ_METRICS_PORT"):  # `trendscope analytics-worker --metrics-port`
    from dramatiq.middleware.prometheus import Prometheus  # reads dramatiq_prom_* at import

    broker.add_middleware(Prometheus())
dramatiq.set_broker(broker)
