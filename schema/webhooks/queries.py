from __future__ import annotations

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.webhooks.rules import EVENT_TYPES
from domain.webhooks.service import webhooks
from schema.loading import tenant_scope
from schema.permissions import requires
from schema.relay import build_connection, decode_id
from schema.webhooks.types import (
    WebhookDelivery,
    WebhookDeliveryConnection,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEventType,
)


@strawberry.type
class WebhookQueries:
    @strawberry.field(
        extensions=[requires("webhooks:manage")],
        description="The tenant's webhook endpoints (their secrets are shown only at creation).",
    )
    async def webhook_endpoints(self, info: Info) -> list[WebhookEndpoint]:
        async with tenant_scope(info.context.tenant_schema):
            rows = await webhooks.list_endpoints()
        return [WebhookEndpoint.from_model(e) for e in rows]

    @strawberry.field(
        extensions=[requires("webhooks:manage")],
        description="The delivery log, newest first, optionally of one endpoint or status.",
    )
    async def webhook_deliveries(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        endpoint_id: relay.GlobalID | None = None,
        status: WebhookDeliveryStatus | None = None,
    ) -> WebhookDeliveryConnection:
        endpoint = decode_id(endpoint_id, "WebhookEndpoint", "endpointId") if endpoint_id else None
        async with tenant_scope(info.context.tenant_schema):
            page = await webhooks.list_deliveries(
                endpoint_id=endpoint,
                status=status.value if status else None,
                first=first,
                after=after,
            )
        return build_connection(WebhookDeliveryConnection, page, WebhookDelivery.from_model)  # type: ignore[return-value]

    @strawberry.field(
        extensions=[requires("webhooks:manage")],
        description="The events an endpoint can subscribe to.",
    )
    def webhook_event_types(self) -> list[WebhookEventType]:
        return [WebhookEventType(name=k, description=v) for k, v in EVENT_TYPES.items()]
