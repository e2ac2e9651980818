from __future__ import annotations

import strawberry


@strawberry.type
class AuthPayload:
    access_token: str
    access_token_expires_at: int = strawberry.field(description="Unix time (seconds).")
    refresh_token: str = strawberry.field(description="Single use: each refresh rotates it.")
    tenant_slug: str
    role: str


@strawberry.type
class TenantInfo:
    slug: str
    name: str


@strawberry.type
class MembershipInfo:
    tenant: TenantInfo
    role: str


@strawberry.type
class UserInfo:
    id: strawberry.ID
    email: str
    display_name: str


@strawberry.type
class Viewer:
    user: UserInfo
    tenant: TenantInfo
    role: str
    scopes: list[str]
    memberships: list[MembershipInfo]


@strawberry.input
class SignUpInput:
    email: str
    password: str
    tenant_name: str
    display_name: str = ""
    tenant_slug: str | None = strawberry.field(
        default=None, description="a-z, 0-9 and _; derived from the tenant name when omitted."
    )


@strawberry.input
class LogInInput:
    email: str
    password: str
    tenant_slug: str | None = None
