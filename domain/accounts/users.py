"""The signed-in user: their row, their memberships, their principal in another of their
tenants (`X-Tenant`). Each read opens its own public transaction."""

from __future__ import annotations

from domain.accounts import rules
from domain.accounts.models import Membership, User
from domain.accounts.service import Principal, active_membership
from tenants.tx import public_tx


class UserService:
    async def principal_for(self, user_id: int, tenant_slug: str) -> Principal:
        """The caller's principal in another of their tenants (`X-Tenant`), checked."""
        async with public_tx():
            membership = await active_membership(user_id, tenant_slug)
        tenant = membership.tenant
        return Principal(
            user_id=user_id,
            tenant_id=tenant.id,
            tenant_schema=tenant.schema_name,
            role=membership.role,
            scopes=rules.scopes_for_role(membership.role),
        )

    async def memberships(self, user_id: int) -> list[Membership]:
        async with public_tx():
            return (
                await Membership.filter(user_id=user_id).prefetch_related("tenant").order_by("id")
            )

    async def get(self, user_id: int) -> User | None:
        async with public_tx():
            return await User.get_or_none(id=user_id)


users = UserService()
