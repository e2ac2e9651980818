from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from starlette.requests import Request
from strawberry import relay
from strawberry.types import Info

from core.runtime import runtime
from core.settings import get_settings
from domain.audit.service import Actor
from domain.collection import oauth
from domain.collection.connections import connections
from domain.collection.platform_runs import platform_runs
from domain.errors import FieldError
from domain.errors import ValidationFailed as DomainValidationFailed
from schema.collection.types import CollectionTask, ConnectionPlatform, PlatformConnection
from schema.context import Context
from schema.errors import NotFound, ValidationFailed, run_mutation
from schema.influencers.types import Platform
from schema.permissions import requires
from schema.relay import decode_id


@strawberry.input(description="One credential field, e.g. api_key (see docs/connectors.md).")
class SecretInput:
    name: str
    value: str


@strawberry.input
class ConnectPlatformInput:
    platform: ConnectionPlatform
    secrets: list[SecretInput]
    label: str = ""


@strawberry.type
class ConnectPlatformSuccess:
    connection: PlatformConnection


ConnectPlatformPayload = Annotated[
    ConnectPlatformSuccess | ValidationFailed, strawberry.union("ConnectPlatformPayload")
]


@strawberry.type
class DisconnectPlatformSuccess:
    connection: PlatformConnection


DisconnectPlatformPayload = Annotated[
    DisconnectPlatformSuccess | NotFound, strawberry.union("DisconnectPlatformPayload")
]


@strawberry.type
class StartPlatformConnectionSuccess:
    authorization_url: str = strawberry.field(
        description="Send the user here; the provider returns them to our callback."
    )


StartPlatformConnectionPayload = Annotated[
    StartPlatformConnectionSuccess | ValidationFailed,
    strawberry.union("StartPlatformConnectionPayload"),
]


@strawberry.input
class StartCollectionInput:
    influencer_id: relay.GlobalID
    platforms: list[Platform]
    since: datetime | None = strawberry.field(
        default=None, description="Collect posts published from then on (default: what is new)."
    )


@strawberry.type
class StartCollectionSuccess:
    tasks: list[CollectionTask]


StartCollectionPayload = Annotated[
    StartCollectionSuccess | ValidationFailed | NotFound,
    strawberry.union("StartCollectionPayload"),
]


@strawberry.type
class CollectionMutations:
    @strawberry.mutation(
        extensions=[requires("tenant:manage")],
        description="Store (or replace) the tenant's credential for a platform, encrypted.",
    )
    async def connect_platform(
        self, info: Info, input: ConnectPlatformInput
    ) -> ConnectPlatformPayload:
        async def run() -> ConnectPlatformSuccess:
            secrets: dict[str, str] = {}
            for item in input.secrets:
                if item.name in secrets:
                    raise DomainValidationFailed(FieldError(f"secrets.{item.name}", "given twice"))
                secrets[item.name] = item.value
            principal = info.context.principal
            conn = await connections.connect(
                input.platform.value,
                secrets,
                input.label,
                tenant_id=principal.tenant_id,
                actor=Actor(user_id=principal.user_id),
            )
            return ConnectPlatformSuccess(connection=PlatformConnection.from_model(conn))

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=[requires("tenant:manage")],
        description="Forget the tenant's credential for a platform.",
    )
    async def disconnect_platform(
        self, info: Info, platform: ConnectionPlatform
    ) -> DisconnectPlatformPayload:
        async def run() -> DisconnectPlatformSuccess:
            principal = info.context.principal
            conn = await connections.disconnect(
                platform.value,
                tenant_id=principal.tenant_id,
                actor=Actor(user_id=principal.user_id),
            )
            return DisconnectPlatformSuccess(connection=PlatformConnection.from_model(conn))

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=[requires("tenant:manage")],
        description="Begin an OAuth connection (x, instagram): the URL of the consent screen. "
        "The callback stores the credential like connectPlatform (docs/connectors.md).",
    )
    async def start_platform_connection(
        self, info: Info[Context, None], platform: ConnectionPlatform
    ) -> StartPlatformConnectionPayload:
        async def run() -> StartPlatformConnectionSuccess:
            ctx = info.context
            settings = get_settings()  # read per call, like the callback route
            assert ctx.tenant_schema is not None and isinstance(ctx.request, Request)
            try:
                url = await oauth.start(
                    runtime.redis,  # type: ignore[arg-type]
                    key_prefix=settings.quota_key_prefix,
                    config=settings.oauth_platforms,
                    tenant_schema=ctx.tenant_schema,
                    platform=platform.value,
                    # the route api/oauth.py serves (its name: the function's)
                    redirect_uri=str(
                        ctx.request.url_for("oauth_callback", platform=platform.value)
                    ),
                )
            except oauth.OAuthFlowError as exc:
                raise DomainValidationFailed(FieldError("platform", str(exc))) from exc
            return StartPlatformConnectionSuccess(authorization_url=url)

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=[requires("collection:write")],
        description="Collect an influencer's accounts now, one task per platform "
        "(on-demand work runs before scheduled work). Follow them with collectionTaskUpdated.",
    )
    async def start_collection(self, input: StartCollectionInput) -> StartCollectionPayload:
        async def run() -> StartCollectionSuccess:
            influencer_id = decode_id(input.influencer_id, "Influencer", "influencerId")
            if not input.platforms:
                raise DomainValidationFailed(FieldError("platforms", "name at least one"))
            tasks = [
                await platform_runs.create(
                    platform=p.value, influencer_id=influencer_id, since=input.since
                )
                for p in dict.fromkeys(input.platforms)
            ]
            return StartCollectionSuccess(tasks=[CollectionTask.from_model(t) for t in tasks])

        return await run_mutation(run)  # type: ignore[return-value]
