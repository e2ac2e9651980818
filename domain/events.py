"""Domain events, published to Redis after the transaction that caused them commits.

Channels are namespaced by tenant: `t:<schema>:<event>`. Payloads are small (ids and a few
fields); subscribers load the rest themselves.
"""

from __future__ import annotations

import json
from typing import Any

import structlog

from core.runtime import runtime
from domain.webhooks.service import webhooks
from tenants.tx import current_tx

log = structlog.get_logger(__name__)

POST_ADDED = "post_added"
COLLECTION_TASK_UPDATED = "collection_task_updated"
PLATFORM_CONNECTION_BROKEN = "platform_connection_broken"
ALERT_TRIGGERED = "alert_triggered"
INSIGHT_CREATED = "insight_created"
SCORE_UPDATED = "score_updated"  # an influencer's figures were recomputed (analytics)
TREND_UPDATED = "trend_updated"  # a trend was created or its status/score changed materially


def channel(schema: str, event: str) -> str:
    return f"t:{schema}:{event}"


def emit(event: str, payload: dict[str, Any]) -> None:
    """Publish `payload` on the current tenant's `event` channel once the transaction commits."""
    tx = current_tx()
    if tx.schema is None:
        raise RuntimeError("tenant events need a tenant transaction")
    name = channel(tx.schema, event)
    data = json.dumps(payload, separators=(",", ":"), default=str)

    async def publish() -> None:
        redis = runtime.redis
        if redis is None:
            log.warning("event_not_published_no_redis", channel=name)
            return
        await redis.publish(name, data)

    tx.on_commit(publish)
    # The single fan-out point of outbound webhooks: every domain event, one place.
    webhooks.fan_out(tx, event, payload)
