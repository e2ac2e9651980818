from __future__ import annotations

import strawberry
from strawberry.types import Info

from core.settings import get_settings
from domain.accounts import oidc
from domain.accounts.identities import identities
from domain.accounts.users import users
from schema.accounts.types import (
    MembershipInfo,
    SignInProviderInfo,
    TenantInfo,
    UserInfo,
    Viewer,
    identity_of,
)
from schema.errors import PublicError
from tenants.models import Tenant


def tenant_info(tenant: Tenant, *, current: bool = False) -> TenantInfo:
    return TenantInfo(
        slug=tenant.slug,
        name=tenant.name,
        tenant_id=tenant.id,
        schema_name=tenant.schema_name,
        plan_name=tenant.plan,
        current=current,
    )


@strawberry.type
class AccountQueries:
    @strawberry.field(description="The signed-in user, their current tenant and memberships.")
    async def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        if principal is None:
            raise PublicError("authentication required", "UNAUTHENTICATED")
        if principal.user_id is None:  # an API key or a partner app: no person behind it
            raise PublicError("viewer needs a person's sign-in, not an API credential", "FORBIDDEN")
        user = await users.get(principal.user_id)
        if user is None:
            raise PublicError("authentication required", "UNAUTHENTICATED")
        memberships = await users.memberships(principal.user_id)
        current = next(m for m in memberships if m.tenant.id == principal.tenant_id)
        linked = await identities.of_user(principal.user_id)
        return Viewer(
            user=UserInfo(
                id=strawberry.ID(str(user.id)),
                email=user.email,
                display_name=user.display_name,
                email_verified_at=user.email_verified_at,
                has_password=user.password_hash is not None,
            ),
            identities=[identity_of(i) for i in linked],
            tenant=tenant_info(current.tenant, current=True),
            role=principal.role,
            scopes=sorted(principal.scopes),
            memberships=[
                MembershipInfo(tenant=tenant_info(m.tenant), role=m.role) for m in memberships
            ],
        )

    @strawberry.field(description="The sign-in providers configured on this server.")
    def sign_in_providers(self, info: Info) -> list[SignInProviderInfo]:
        settings = get_settings()  # read per call, like the sign-in routes
        request = info.context.request
        base = (settings.public_url or (str(request.base_url) if request else "")).rstrip("/")
        return [
            SignInProviderInfo(
                name=name,
                display_name=conf.display_name
                or oidc.PRESETS.get(name, {}).get("display_name")
                or name,
                login_url=f"{base}/auth/{name}/login",
            )
            for name, conf in sorted(settings.sign_in_providers.items())
        ]
