from __future__ import annotations

from datetime import datetime

import strawberry

from core.live import live_subscriptions
from domain import entitlements
from domain.accounts.models import UserIdentity
from schema.billing.types import PlanInfo, PlanLimits, TenantUsage
from tenants.plans import plan_for


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
    tenant_id: strawberry.Private[int | None] = None
    schema_name: strawberry.Private[str | None] = None
    plan_name: strawberry.Private[str | None] = None
    current: strawberry.Private[bool] = False  # the tenant the request is bound to

    @strawberry.field(description="The tenant's plan.")
    def plan(self) -> PlanInfo:
        return PlanInfo.of(plan_for(self.plan_name))

    @strawberry.field(description="What the plan includes.")
    def limits(self) -> PlanLimits:
        return PlanLimits.of(plan_for(self.plan_name))

    @strawberry.field(description="Counts now; only for the tenant the request is bound to.")
    async def usage(self) -> TenantUsage | None:
        if not self.current or self.tenant_id is None or self.schema_name is None:
            return None
        counts = await entitlements.usage(self.tenant_id, self.schema_name)
        return TenantUsage(
            influencers=counts.influencers,
            seats=counts.seats,
            live_subscriptions=live_subscriptions(self.schema_name),
        )


@strawberry.type
class MembershipInfo:
    tenant: TenantInfo
    role: str


@strawberry.type
class UserInfo:
    id: strawberry.ID
    email: str
    display_name: str
    email_verified_at: datetime | None = strawberry.field(
        default=None, description="When the address was proven (null: not verified)."
    )
    has_password: bool = strawberry.field(
        default=True, description="False for accounts made through a sign-in provider."
    )


@strawberry.type(description="A sign-in provider account linked to the user.")
class Identity:
    id: strawberry.ID
    provider: str
    email: str | None = strawberry.field(description="As the provider last reported it.")
    created_at: datetime


def identity_of(row: UserIdentity) -> Identity:
    return Identity(
        id=strawberry.ID(str(row.id)),
        provider=row.provider,
        email=row.email,
        created_at=row.created_at,
    )


@strawberry.type
class Viewer:
    user: UserInfo
    tenant: TenantInfo
    role: str
    scopes: list[str]
    memberships: list[MembershipInfo]
    identities: list[Identity] = strawberry.field(default_factory=list)


@strawberry.type(description="A configured sign-in provider: send the browser to `loginUrl`.")
class SignInProviderInfo:
    name: str
    display_name: str
    login_url: str


@strawberry.type
class LogOutSuccess:
    revoked: bool = strawberry.field(description="False: the token was unknown (nothing to do).")


@strawberry.type
class RequestEmailVerificationSuccess:
    sent: bool = strawberry.field(description="False: the address is verified already.")


@strawberry.type
class VerifyEmailSuccess:
    email: str
    email_verified_at: datetime


@strawberry.type
class RequestPasswordResetSuccess:
    message: str = strawberry.field(
        description="The same whether or not an account has this address."
    )


@strawberry.type
class ResetPasswordSuccess:
    email: str


@strawberry.type
class LinkIdentitySuccess:
    authorization_url: str = strawberry.field(description="Send the browser there.")


@strawberry.type
class CompleteIdentityLinkSuccess:
    identity: Identity


@strawberry.type
class UnlinkIdentitySuccess:
    id: strawberry.ID


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
