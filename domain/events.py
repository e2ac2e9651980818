"""The domain events: their names, and the webhook fan-out every one of them goes through.

Services publish them with `tenants.outbox.publish(event, payload)` after the write that
caused them; they go out on the tenant's Redis channel (`core.hub.channel`) once the
transaction commits. Payloads are small (ids and a few fields); subscribers load the rest.
"""

from __future__ import annotations

from domain.webhooks.service import webhooks
from tenants import outbox

POST_ADDED = "post_added"
COLLECTION_TASK_UPDATED = "collection_task_updated"
PLATFORM_CONNECTION_BROKEN = "platform_connection_broken"
ALERT_TRIGGERED = "alert_triggered"
INSIGHT_CREATED = "insight_created"
SCORE_UPDATED = "score_updated"  # an influencer's figures were recomputed (analytics)
TREND_UPDATED = "trend_updated"  # a trend was created or its status/score changed materially

# The single fan-out point of outbound webhooks: every domain event, one place. Registered
# here, where the event names are, so that every publisher of a domain event has it.
outbox.add_event_listener(webhooks.fan_out)
