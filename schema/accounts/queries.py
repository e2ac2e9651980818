from __future__ import annotations

import strawberry
from strawberry.types import Info

from domain.accounts.service import accounts
from schema.accounts.types import MembershipInfo, TenantInfo, UserInfo, Viewer
from schema.errors import PublicError


@strawberry.type
class AccountQueries:
    @strawberry.field(description="The signed-in user, their current tenant and memberships.")
    async def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        if principal is None:
            raise PublicError("authentication required", "UNAUTHENTICATED")
        if principal.user_id is None:  # an API key or a partner app: no person behind it
            raise PublicError("viewer needs a person's sign-in, not an API credential", "FORBIDDEN")
        user = await accounts.get_user(principal.user_id)
        if user is None:
            raise PublicError("authentication required", "UNAUTHENTICATED")
        memberships = await accounts.memberships(principal.user_id)
        current = next(m for m in memberships if m.tenant.id == principal.tenant_id)
        return Viewer(
            user=UserInfo(
                id=strawberry.ID(str(user.id)), email=user.email, display_name=user.display_name
            ),
            tenant=TenantInfo(slug=current.tenant.slug, name=current.tenant.name),
            role=principal.role,
            scopes=sorted(principal.scopes),
            memberships=[
                MembershipInfo(
                    tenant=TenantInfo(slug=m.tenant.slug, name=m.tenant.name), role=m.role
                )
                for m in memberships
            ],
        )
