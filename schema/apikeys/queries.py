from __future__ import annotations

import strawberry
from strawberry.types import Info

from domain.apikeys.service import apikeys
from schema.apikeys.types import ApiKey, PartnerApp
from schema.permissions import requires


@strawberry.type
class ApiKeyQueries:
    @strawberry.field(
        description="The tenant's API keys, newest first (secrets are never shown again).",
        extensions=[requires("apikeys:manage")],
    )
    async def api_keys(self, info: Info) -> list[ApiKey]:
        rows = await apikeys.list_keys(info.context.principal.tenant_id)
        return [ApiKey.from_model(r) for r in rows]

    @strawberry.field(
        description="The tenant's partner apps (OAuth client credentials), newest first.",
        extensions=[requires("apikeys:manage")],
    )
    async def partner_apps(self, info: Info) -> list[PartnerApp]:
        rows = await apikeys.list_apps(info.context.principal.tenant_id)
        return [PartnerApp.from_model(r) for r in rows]
