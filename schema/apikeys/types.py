from __future__ import annotations

from datetime import datetime

import strawberry

from domain.apikeys import models


@strawberry.type(description="A scoped API key; its secret is shown only when created.")
class ApiKey:
    id: strawberry.ID
    name: str
    prefix: str = strawberry.field(description="Visible part of the key: tsk_<prefix>_...")
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = strawberry.field(description="Refreshed at most once a minute.")
    revoked: bool
    revoked_at: datetime | None

    @classmethod
    def from_model(cls, row: models.ApiKey) -> ApiKey:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            prefix=row.prefix,
            scopes=list(row.scopes),
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked=row.revoked_at is not None,
            revoked_at=row.revoked_at,
        )


@strawberry.type(description="A partner integration using OAuth 2.0 client credentials.")
class PartnerApp:
    id: strawberry.ID
    name: str
    client_id: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(description="When it last got a token.")
    revoked: bool
    revoked_at: datetime | None

    @classmethod
    def from_model(cls, row: models.PartnerApp) -> PartnerApp:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            client_id=row.client_id,
            scopes=list(row.scopes),
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked=row.revoked_at is not None,
            revoked_at=row.revoked_at,
        )


@strawberry.input
class CreateApiKeyInput:
    name: str
    scopes: list[str] = strawberry.field(description="A subset of your own scopes.")
    expires_at: datetime | None = None


@strawberry.input
class CreatePartnerAppInput:
    name: str
    scopes: list[str] = strawberry.field(description="A subset of your own scopes.")
