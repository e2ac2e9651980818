from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from core.settings import get_settings
from domain.audit.service import Actor
from domain.webhooks.service import webhooks
from schema.errors import NotFound, ValidationFailed, run_mutation
from schema.permissions import requires
from schema.relay import decode_id
from schema.webhooks.types import WebhookDelivery, WebhookEndpoint


@strawberry.input
class CreateWebhookEndpointInput:
    url: str
    events: list[str] = strawberry.field(description="Names from webhookEventTypes.")
    description: str = ""


@strawberry.type
class CreateWebhookEndpointSuccess:
    endpoint: WebhookEndpoint
    secret: str = strawberry.field(
        description="whsec_...: shown once. Verify each delivery's webhook-signature with it "
        "(Standard Webhooks, docs/webhooks.md)."
    )


CreateWebhookEndpointPayload = Annotated[
    CreateWebhookEndpointSuccess | ValidationFailed,
    strawberry.union("CreateWebhookEndpointPayload"),
]


@strawberry.input
class UpdateWebhookEndpointInput:
    id: relay.GlobalID
    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    is_active: bool | None = None


@strawberry.type
class UpdateWebhookEndpointSuccess:
    endpoint: WebhookEndpoint


UpdateWebhookEndpointPayload = Annotated[
    UpdateWebhookEndpointSuccess | NotFound | ValidationFailed,
    strawberry.union("UpdateWebhookEndpointPayload"),
]


@strawberry.type
class DeleteWebhookEndpointSuccess:
    endpoint: WebhookEndpoint


DeleteWebhookEndpointPayload = Annotated[
    DeleteWebhookEndpointSuccess | NotFound | ValidationFailed,
    strawberry.union("DeleteWebhookEndpointPayload"),
]


@strawberry.type
class RedeliverWebhookSuccess:
    delivery: WebhookDelivery


RedeliverWebhookPayload = Annotated[
    RedeliverWebhookSuccess | NotFound | ValidationFailed,
    strawberry.union("RedeliverWebhookPayload"),
]


def _actor(info: Info) -> Actor:
    """Who the service audits the change under."""
    return Actor(user_id=info.context.principal.user_id)


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        extensions=[requires("webhooks:manage")],
        description="Register an endpoint for some events; its signing secret is returned once.",
    )
    async def create_webhook_endpoint(
        self, info: Info, input: CreateWebhookEndpointInput
    ) -> CreateWebhookEndpointPayload:
        async def run() -> CreateWebhookEndpointSuccess:
            endpoint, secret = await webhooks.create(
                url=input.url,
                events=input.events,
                description=input.description,
                allow_private=get_settings().webhook_private_urls_allowed,
                tenant_id=info.context.principal.tenant_id,
                actor=_actor(info),
            )
            return CreateWebhookEndpointSuccess(
                endpoint=WebhookEndpoint.from_model(endpoint), secret=secret
            )

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(extensions=[requires("webhooks:manage")])
    async def update_webhook_endpoint(
        self, info: Info, input: UpdateWebhookEndpointInput
    ) -> UpdateWebhookEndpointPayload:
        async def run() -> UpdateWebhookEndpointSuccess:
            endpoint = await webhooks.update(
                decode_id(input.id, "WebhookEndpoint"),
                allow_private=get_settings().webhook_private_urls_allowed,
                url=input.url,
                events=input.events,
                description=input.description,
                is_active=input.is_active,
                tenant_id=info.context.principal.tenant_id,
                actor=_actor(info),
            )
            return UpdateWebhookEndpointSuccess(endpoint=WebhookEndpoint.from_model(endpoint))

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=[requires("webhooks:manage")],
        description="Delete an endpoint and its delivery log.",
    )
    async def delete_webhook_endpoint(
        self, info: Info, id: relay.GlobalID
    ) -> DeleteWebhookEndpointPayload:
        async def run() -> DeleteWebhookEndpointSuccess:
            endpoint_id = decode_id(id, "WebhookEndpoint")
            endpoint = await webhooks.delete(
                endpoint_id, tenant_id=info.context.principal.tenant_id, actor=_actor(info)
            )
            endpoint.id = endpoint_id
            return DeleteWebhookEndpointSuccess(endpoint=WebhookEndpoint.from_model(endpoint))

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=[requires("webhooks:manage")],
        description="Send a delivery's message again now (same webhook-id and body).",
    )
    async def redeliver_webhook(
        self, info: Info, delivery_id: relay.GlobalID
    ) -> RedeliverWebhookPayload:
        async def run() -> RedeliverWebhookSuccess:
            delivery = await webhooks.redeliver(
                decode_id(delivery_id, "WebhookDelivery", "deliveryId"),
                info.context.tenant_schema,
            )
            return RedeliverWebhookSuccess(delivery=WebhookDelivery.from_model(delivery))

        return await run_mutation(run)  # type: ignore[return-value]
