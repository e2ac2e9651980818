from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from starlette.requests import Request
from strawberry import relay
from strawberry.file_uploads import Upload
from strawberry.types import Info

from core.runtime import runtime
from core.settings import get_settings
from domain.audit import service as actions
from domain.audit.service import Actor, audit
from domain.collection import oauth
from domain.collection.collect import collector
from domain.collection.connections import connections
from domain.collection.service import collection
from domain.errors import FieldError
from domain.errors import ValidationFailed as DomainValidationFailed
from schema.collection.types import CollectionTask, ConnectionPlatform, PlatformConnection
from schema.context import Context
from schema.errors import NotFound, ValidationFailed, run_mutation
from schema.influencers.types import Platform
from schema.permissions import requires
from schema.relay import decode_id


@strawberry.type
class ImportPostsSuccess:
    task: CollectionTask


ImportPostsPayload = Annotated[
    ImportPostsSuccess | ValidationFailed, strawberry.union("ImportPostsPayload")
]


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


async def audit_credential(info: Info, action: str, connection_id: int, platform: str) -> None:
    principal = info.context.principal
    await audit.record(
        action,
        tenant_id=principal.tenant_id,
        actor=Actor(user_id=principal.user_id),
        target=("PlatformConnection", connection_id),
        metadata={"platform": platform},
    )


@strawberry.type
class CollectionMutations:
    @strawberry.mutation(
        extensions=[requires("collection:write")],
        description="Import posts from a CSV or JSONL file (GraphQL multipart upload). "
        "Returns at once with a task; follow it with collectionTaskUpdated.",
    )
    async def import_posts(self, info: Info, file: Upload) -> ImportPostsPayload:
        max_bytes = info.context.settings.import_max_bytes

        async def run() -> ImportPostsSuccess:
            filename = getattr(file, "filename", None) or "upload"
            read = getattr(file, "read", None)
            if read is None:
                raise DomainValidationFailed(FieldError("file", "expected an uploaded file"))
            content = await read(max_bytes + 1)
            task = await collection.create_import(
                filename=filename, content=content, max_bytes=max_bytes
            )
            return ImportPostsSuccess(task=CollectionTask.from_model(task))

        return await run_mutation(run)  # type: ignore[return-value]

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
            conn = await connections.connect(input.platform.value, secrets, input.label)
            await audit_credential(info, actions.CREDENTIAL_CONNECTED, conn.id, conn.platform)
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
            conn = await connections.disconnect(platform.value)
            await audit_credential(info, actions.CREDENTIAL_DISCONNECTED, conn.id, conn.platform)
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
                await collector.create(
                    platform=p.value, influencer_id=influencer_id, since=input.since
                )
                for p in dict.fromkeys(input.platforms)
            ]
            return StartCollectionSuccess(tasks=[CollectionTask.from_model(t) for t in tasks])

        return await run_mutation(run)  # type: ignore[return-value]
