from __future__ import annotations

import strawberry
from strawberry.types import Info

from domain.accounts.service import accounts
from schema.accounts.types import MembershipInfo, TenantInfo, UserInfo, Viewer
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
        user = await accounts.get_user(principal.user_id)
        if user is None:
            raise PublicError("authentication required", "UNAUTHENTICATED")
        memberships = await accounts.memberships(principal.user_id)
        current = next(m for m in memberships if m.tenant.id == principal.tenant_id)
        return Viewer(
            user=UserInfo(
                id=strawberry.ID(str(user.id)), email=user.email, display_name=user.display_name
            ),
            tenant=tenant_info(current.tenant, current=True),
            role=principal.role,
            scopes=sorted(principal.scopes),
            memberships=[
                MembershipInfo(tenant=tenant_info(m.tenant), role=m.role) for m in memberships
            ],
        )
