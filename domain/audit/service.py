"""`audit.record(...)`: write an audit entry in the caller's transaction.

Security-relevant actions (sign-in success and failure, invitations, role changes, member
removal, credential connect/disconnect, webhook endpoints, API keys) call `audit.record` inside
the transaction that makes the change, so the entry commits or rolls back with it. The request's
IP address and id come from `bind_origin` (set once per request by the API), so callers only
say what happened.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from domain.audit.models import AuditLog
from domain.pagination import Page, newest_first
from tenants.tx import public_tx

# The actions written today (others add theirs; keep the names `<noun>.<past verb>`).
SIGN_IN_SUCCEEDED = "auth.sign_in_succeeded"
SIGN_IN_FAILED = "auth.sign_in_failed"
MEMBER_INVITED = "member.invited"
INVITATION_REVOKED = "member.invitation_revoked"
INVITATION_ACCEPTED = "member.invitation_accepted"
MEMBER_ROLE_CHANGED = "member.role_changed"
MEMBER_REMOVED = "member.removed"
CREDENTIAL_CONNECTED = "credential.connected"
CREDENTIAL_DISCONNECTED = "credential.disconnected"
WEBHOOK_ENDPOINT_CREATED = "webhook_endpoint.created"
WEBHOOK_ENDPOINT_UPDATED = "webhook_endpoint.updated"
WEBHOOK_ENDPOINT_DELETED = "webhook_endpoint.deleted"
API_KEY_CREATED = "api_key.created"
API_KEY_REVOKED = "api_key.revoked"
PARTNER_APP_CREATED = "partner_app.created"
PARTNER_APP_REVOKED = "partner_app.revoked"


@dataclass(frozen=True)
class Origin:
    """Where the request came from: the client's address and the request id."""

    ip: str | None = None
    request_id: str | None = None


_NO_ORIGIN = Origin()
_origin: ContextVar[Origin | None] = ContextVar("trendscope_audit_origin", default=None)


def bind_origin(origin: Origin) -> None:
    """Set the origin for the rest of this request (the API does it per request)."""
    _origin.set(origin)


@contextmanager
def origin_scope(origin: Origin | None) -> Iterator[None]:
    token = _origin.set(origin)
    try:
        yield
    finally:
        _origin.reset(token)


@dataclass(frozen=True)
class Actor:
    """Who acted: a user, an API key / partner app (`key`, e.g. "key:42"), or the system."""

    user_id: int | None = None
    key: str | None = None


class AuditService:
    async def record(
        self,
        action: str,
        *,
        tenant_id: int | None,
        actor: Actor | None = None,
        target: tuple[str, object] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AuditLog:
        """Write one entry inside the current transaction (or a new public one)."""
        origin = _origin.get() or _NO_ORIGIN
        async with public_tx():
            return await AuditLog.create(
                tenant_id=tenant_id,
                actor_user_id=actor.user_id if actor else None,
                actor_key=actor.key if actor else None,
                action=action,
                target_type=target[0] if target else None,
                target_id=str(target[1]) if target else None,
                ip=origin.ip,
                request_id=origin.request_id,
                metadata=metadata or {},
            )

    async def list(
        self,
        tenant_id: int,
        *,
        action: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Page[AuditLog]:
        """A tenant's entries, newest first."""
        query = AuditLog.filter(tenant_id=tenant_id)
        if action:
            query = query.filter(action=action)
        async with public_tx():
            return await newest_first(query, first, after, "audit")

    async def by_ids(self, tenant_id: int, ids: Sequence[int]) -> dict[int, AuditLog]:
        async with public_tx():
            rows = await AuditLog.filter(tenant_id=tenant_id, id__in=list(ids))
        return {r.id: r for r in rows}


audit = AuditService()
