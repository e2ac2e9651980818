from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.apikeys.service import apikeys
from domain.errors import NotFound as NotFoundError
from schema.apikeys.types import ApiKey, CreateApiKeyInput, CreatePartnerAppInput, PartnerApp
from schema.errors import (
    NotFound,
    PermissionDenied,
    PlanLimitReached,
    ValidationFailed,
    run_mutation,
)
from schema.permissions import requires


@strawberry.type
class CreateApiKeySuccess:
    api_key: ApiKey
    key: str = strawberry.field(
        description="The key itself, shown only this once: send it as `Authorization: Bearer`."
    )


@strawberry.type
class RevokeApiKeySuccess:
    api_key: ApiKey


@strawberry.type
class CreatePartnerAppSuccess:
    partner_app: PartnerApp
    client_secret: str = strawberry.field(description="Shown only this once.")


@strawberry.type
class RevokePartnerAppSuccess:
    partner_app: PartnerApp


CreateApiKeyPayload = Annotated[
    CreateApiKeySuccess | ValidationFailed | PermissionDenied | PlanLimitReached,
    strawberry.union("CreateApiKeyPayload"),
]
RevokeApiKeyPayload = Annotated[
    RevokeApiKeySuccess | NotFound, strawberry.union("RevokeApiKeyPayload")
]
CreatePartnerAppPayload = Annotated[
    CreatePartnerAppSuccess | ValidationFailed | PermissionDenied | PlanLimitReached,
    strawberry.union("CreatePartnerAppPayload"),
]
RevokePartnerAppPayload = Annotated[
    RevokePartnerAppSuccess | NotFound, strawberry.union("RevokePartnerAppPayload")
]


def _row_id(id: strawberry.ID, entity: str) -> int:
    try:
        return int(str(id))
    except ValueError as exc:
        raise NotFoundError(entity, id) from exc


@strawberry.type
class ApiKeyMutations:
    @strawberry.mutation(
        description="Create an API key with some of your scopes; the key is returned once.",
        extensions=[requires("apikeys:manage")],
    )
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
        async def run() -> CreateApiKeySuccess:
            created = await apikeys.create_key(
                info.context.principal,
                name=input.name,
                scopes=input.scopes,
                expires_at=input.expires_at,
            )
            return CreateApiKeySuccess(api_key=ApiKey.from_model(created.row), key=created.key)

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(
        description="Revoke an API key: it is refused from the next request on.",
        extensions=[requires("apikeys:manage")],
    )
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> RevokeApiKeyPayload:
        async def run() -> RevokeApiKeySuccess:
            row = await apikeys.revoke_key(info.context.principal, _row_id(id, "ApiKey"))
            return RevokeApiKeySuccess(api_key=ApiKey.from_model(row))

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(
        description="Register a partner app (OAuth 2.0 client credentials, POST /oauth/token);"
        " the client secret is returned once.",
        extensions=[requires("apikeys:manage")],
    )
    async def create_partner_app(
        self, info: Info, input: CreatePartnerAppInput
    ) -> CreatePartnerAppPayload:
        async def run() -> CreatePartnerAppSuccess:
            created = await apikeys.create_app(
                info.context.principal, name=input.name, scopes=input.scopes
            )
            return CreatePartnerAppSuccess(
                partner_app=PartnerApp.from_model(created.row),
                client_secret=created.client_secret,
            )

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(
        description="Revoke a partner app: no new tokens, and its issued tokens stop working.",
        extensions=[requires("apikeys:manage")],
    )
    async def revoke_partner_app(self, info: Info, id: strawberry.ID) -> RevokePartnerAppPayload:
        async def run() -> RevokePartnerAppSuccess:
            row = await apikeys.revoke_app(info.context.principal, _row_id(id, "PartnerApp"))
            return RevokePartnerAppSuccess(partner_app=PartnerApp.from_model(row))

        return await run_mutation(run)  # type: ignore[return-value]
