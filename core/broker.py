"""The Dramatiq broker (Redis), built from settings on first use.

Below every package that sends messages (the outbox sends by actor name) and the one that
declares the actors (jobs/actors.py), so that senders need not import the actors.
"""

from __future__ import annotations

import functools
import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO

from core.settings import get_settings


def get_broker() -> RedisBroker:
    """The process's broker, also set as Dramatiq's global one (which `@dramatiq.actor` and
    the `dramatiq` worker CLI use). Built on first call, not on import: a process that never
    sends a message never builds one; and built again if the settings it was made from
    changed since (a test run sets its own namespace after collection imported modules)."""
    settings = get_settings()
    url = os.environ.get("REDIS_URL") or settings.redis_url or "redis://127.0.0.1:6379/0"
    return _broker(url, settings.dramatiq_namespace)


@functools.cache
def _broker(url: str, namespace: str) -> RedisBroker:
    broker = RedisBroker(url=url, namespace=namespace)
    broker.add_middleware(AsyncIO())
    if os.environ.get("DRAMATIQ_METRICS_PORT"):  # `trendscope analytics-worker --metrics-port`
        from dramatiq.middleware.prometheus import Prometheus  # reads dramatiq_prom_* at import

        broker.add_middleware(Prometheus())
    dramatiq.set_broker(broker)
    return broker
