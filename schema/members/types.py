"""GraphQL types of members, invitations and the audit log (public tables, tenant-scoped).

Their nodes resolve only for a caller holding the list's scope, and only in the caller's
tenant, so `node(id:)` cannot read around `members` / `auditLog`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from domain.accounts import models
from domain.accounts.members import members
from domain.audit.models import AuditLog
from domain.audit.service import audit


@strawberry.enum
class MemberRole(Enum):
    OWNER = "owner"
    ADMIN = "admin"
    ANALYST = "analyst"
    VIEWER = "viewer"


@strawberry.enum
class InvitationStatus(Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"


def _allowed_tenant(info: Info, scope: str) -> int | None:
    principal = info.context.principal
    if principal is None or scope not in principal.scopes:
        return None
    return int(principal.tenant_id)


@strawberry.type
class Member(relay.Node):
    id: relay.NodeID[int]
    user_id: strawberry.ID
    email: str
    display_name: str
    role: MemberRole
    joined_at: datetime

    @classmethod
    def from_model(cls, m: models.Membership) -> Member:
        return cls(
            id=m.id,
            user_id=strawberry.ID(str(m.user.id)),
            email=m.user.email,
            display_name=m.user.display_name,
            role=MemberRole(m.role),
            joined_at=m.created_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Member | None]:
        ids = [int(i) for i in node_ids]
        tenant_id = _allowed_tenant(info, "members:manage")
        found = await members.members_by_ids(tenant_id, ids) if tenant_id else {}
        return [cls.from_model(found[i]) if i in found else None for i in ids]


@strawberry.type
class MemberConnection(relay.Connection[Member]):
    pass


@strawberry.type
class Invitation(relay.Node):
    id: relay.NodeID[int]
    email: str
    role: MemberRole
    status: InvitationStatus
    expires_at: datetime
    created_at: datetime

    @classmethod
    def from_model(cls, m: models.Invitation) -> Invitation:
        if m.accepted_at is not None:
            status = InvitationStatus.ACCEPTED
        elif m.revoked_at is not None:
            status = InvitationStatus.REVOKED
        elif m.expires_at <= datetime.now(UTC):
            status = InvitationStatus.EXPIRED
        else:
            status = InvitationStatus.PENDING
        return cls(
            id=m.id,
            email=m.email,
            role=MemberRole(m.role),
            status=status,
            expires_at=m.expires_at,
            created_at=m.created_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Invitation | None]:
        ids = [int(i) for i in node_ids]
        tenant_id = _allowed_tenant(info, "members:manage")
        found = await members.invitations_by_ids(tenant_id, ids) if tenant_id else {}
        return [cls.from_model(found[i]) if i in found else None for i in ids]


@strawberry.type
class InvitationConnection(relay.Connection[Invitation]):
    pass


@strawberry.type(description="One security-relevant action (docs/members.md lists them).")
class AuditEntry(relay.Node):
    id: relay.NodeID[int]
    action: str
    actor_user_id: strawberry.ID | None = strawberry.field(
        description="The user who acted (None: an API key, a partner app or the system)."
    )
    actor_key: str | None = strawberry.field(description="The API key or app that acted.")
    target_type: str | None
    target_id: str | None
    ip: str | None
    request_id: str | None
    metadata: JSON
    created_at: datetime

    @classmethod
    def from_model(cls, m: AuditLog) -> AuditEntry:
        meta: dict[str, Any] = dict(m.metadata or {})
        return cls(
            id=m.id,
            action=m.action,
            actor_user_id=strawberry.ID(str(m.actor_user_id)) if m.actor_user_id else None,
            actor_key=m.actor_key,
            target_type=m.target_type,
            target_id=m.target_id,
            ip=m.ip,
            request_id=m.request_id,
            metadata=meta,  # type: ignore[arg-type]  # JSON is a NewType
            created_at=m.created_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[AuditEntry | None]:
        ids = [int(i) for i in node_ids]
        tenant_id = _allowed_tenant(info, "audit:read")
        found = await audit.by_ids(tenant_id, ids) if tenant_id else {}
        return [cls.from_model(found[i]) if i in found else None for i in ids]


@strawberry.type
class AuditEntryConnection(relay.Connection[AuditEntry]):
    pass
