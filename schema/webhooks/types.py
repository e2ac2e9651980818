"""GraphQL types of outbound webhooks. Their nodes need webhooks:manage, checked for every
field and `node(id:)` by schema.permissions.TYPE_SCOPES."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from domain.webhooks import models
from domain.webhooks.service import webhooks
from schema.loading import tenant_nodes


@strawberry.type
class WebhookEndpoint(relay.Node):
    id: relay.NodeID[int]
    url: str
    description: str
    events: list[str]
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, m: models.WebhookEndpoint) -> WebhookEndpoint:
        return cls(
            id=m.id,
            url=m.url,
            description=m.description,
            events=list(m.events or []),
            is_active=m.is_active,
            created_at=m.created_at,
            updated_at=m.updated_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[WebhookEndpoint | None]:
        return await tenant_nodes(
            info.context.tenant_schema, node_ids, webhooks.endpoints_by_ids, cls.from_model
        )


@strawberry.enum
class WebhookDeliveryStatus(Enum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@strawberry.type(description="One message to one endpoint and how its attempts went.")
class WebhookDelivery(relay.Node):
    id: relay.NodeID[int]
    endpoint_id: strawberry.ID
    event_type: str
    message_id: str = strawberry.field(description="The webhook-id header, on every attempt.")
    status: WebhookDeliveryStatus
    attempts: int
    response_code: int | None = strawberry.field(description="The last attempt's HTTP status.")
    last_error: str | None
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    created_at: datetime
    payload: JSON = strawberry.field(description="The body sent: {type, timestamp, data}.")

    @classmethod
    def from_model(cls, m: models.WebhookDelivery) -> WebhookDelivery:
        body: dict[str, Any] = dict(m.payload or {})
        return cls(
            id=m.id,
            endpoint_id=strawberry.ID(str(relay.GlobalID("WebhookEndpoint", str(m.endpoint_id)))),
            event_type=m.event_type,
            message_id=m.message_id,
            status=WebhookDeliveryStatus(m.status),
            attempts=m.attempts,
            response_code=m.response_code,
            last_error=m.last_error,
            next_attempt_at=m.next_attempt_at,
            last_attempt_at=m.last_attempt_at,
            created_at=m.created_at,
            payload=body,  # type: ignore[arg-type]  # JSON is a NewType
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[WebhookDelivery | None]:
        return await tenant_nodes(
            info.context.tenant_schema, node_ids, webhooks.deliveries_by_ids, cls.from_model
        )


@strawberry.type
class WebhookDeliveryConnection(relay.Connection[WebhookDelivery]):
    pass


@strawberry.type
class WebhookEventType:
    name: str
    description: str
