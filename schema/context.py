"""The per-request (or per-websocket) GraphQL context: a typed dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from core.hub import EventHub
from core.settings import Settings
from domain.accounts.service import Principal
from schema.dataloaders import Loaders


@dataclass
class Context:
    # None: a multiplexed subscription group (api/graphql/ws_groups.py)
    request: Request | WebSocket | None
    response: Response | WebSocket | None
    settings: Settings
    hub: EventHub | None
    request_id: str
    principal: Principal | None = None
    loaders: Loaders = field(default_factory=lambda: Loaders(None))
    connection_params: dict[str, Any] | None = None

    @property
    def tenant_schema(self) -> str | None:
        return self.principal.tenant_schema if self.principal else None


def subscription_tenant(info: Any) -> str:
    """The subscriber's tenant schema (subscriptions need an authenticated tenant and the
    event hub); `info` is the resolver's Strawberry Info."""
    context: Context = info.context
    if context.tenant_schema is None or context.hub is None:
        raise PermissionError("subscriptions need an authenticated tenant")
    return context.tenant_schema
