from __future__ import annotations

import strawberry
from strawberry.types import Info

from domain.accounts.members import members
from domain.audit.service import audit
from schema.members.types import (
    AuditEntry,
    AuditEntryConnection,
    Invitation,
    InvitationConnection,
    Member,
    MemberConnection,
)
from schema.permissions import requires
from schema.relay import build_connection


@strawberry.type
class MemberQueries:
    @strawberry.field(
        extensions=[requires("members:manage")],
        description="The tenant's members, oldest first.",
    )
    async def members(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> MemberConnection:
        page = await members.list_members(
            info.context.principal.tenant_id, first=first, after=after
        )
        return build_connection(MemberConnection, page, Member.from_model)  # type: ignore[return-value]

    @strawberry.field(
        extensions=[requires("members:manage")],
        description="Invitations, newest first: the pending ones unless pendingOnly is false.",
    )
    async def invitations(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        pending_only: bool = True,
    ) -> InvitationConnection:
        page = await members.list_invitations(
            info.context.principal.tenant_id, pending_only=pending_only, first=first, after=after
        )
        return build_connection(InvitationConnection, page, Invitation.from_model)  # type: ignore[return-value]

    @strawberry.field(
        extensions=[requires("audit:read")],
        description="The tenant's audit log, newest first, optionally of one action.",
    )
    async def audit_log(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        action: str | None = None,
    ) -> AuditEntryConnection:
        page = await audit.list(
            info.context.principal.tenant_id, action=action, first=first, after=after
        )
        return build_connection(AuditEntryConnection, page, AuditEntry.from_model)  # type: ignore[return-value]
