"""Members of a tenant: invitations, roles, removal (public tables, tenant-scoped).

Runs inside the caller's transaction and never commits. Every change locks the tenant's row
first, so concurrent changes (two demotions of the last two owners, two invitations for the
last seat) are serialised. Role rules are pure (`rules.role_change_refusal`).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.queryset import QuerySet

from domain import entitlements
from domain.accounts import mail, rules
from domain.accounts.models import Invitation, Membership, RefreshToken, User
from domain.accounts.service import Principal, _hasher
from domain.accounts.sessions import sessions
from domain.audit import service as actions
from domain.audit.service import Actor, audit
from domain.errors import (
    FieldError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from domain.pagination import Page, check_first, decode_cursor, encode_cursor, newest_first
from tenants import outbox
from tenants.models import Tenant
from tenants.plans import plan_for
from tenants.tx import public_tx


def hash_invitation_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _actor(principal: Principal) -> Actor:
    return Actor(user_id=principal.user_id)


@dataclass(frozen=True)
class Accepted:
    user: User
    tenant: Tenant
    membership: Membership


class MemberService:
    async def check_seats(self, tenant: Tenant, *, pending_invitations: bool = True) -> None:
        """The one seat check: members (plus pending invitations, which hold a seat) must stay
        within the plan's `seats`; else `PlanLimitReached("seats")`."""
        plan = plan_for(tenant.plan)
        if plan.seats is None:
            return
        used = await Membership.filter(tenant_id=tenant.id).count()
        if pending_invitations:
            used += await self._pending(tenant.id).count()
        entitlements.check_within(plan, "seats", used)

    async def invite(
        self,
        principal: Principal,
        *,
        email: str,
        role: str,
        ttl: timedelta,
        send_email: bool = True,
    ) -> tuple[Invitation, str | None]:
        """A new invitation. A pending invitation for the same e-mail is replaced.

        `send_email`: a job mails the accept link (`send_invitation`; the token then exists
        only in the mail) and None is returned. Otherwise the token is returned, shown once,
        for the caller to deliver. Either way only its hash is stored."""
        email = rules.normalize_email(email)
        problems = [e for e in (rules.check_email(email), rules.check_role(role)) if e]
        if problems:
            raise ValidationFailed(problems)
        async with public_tx():
            tenant = await self._lock_tenant(principal.tenant_id)
            refusal = rules.role_change_refusal(principal.role, None, role, owners=0)
            if refusal:
                raise PermissionDenied(refusal)
            if await Membership.filter(tenant_id=tenant.id, user__email=email).exists():
                raise ValidationFailed(FieldError("email", "is already a member"))
            now = datetime.now(UTC)
            await self._pending(tenant.id).filter(email=email).update(revoked_at=now)
            await self.check_seats(tenant)
            token = secrets.token_urlsafe(32)
            invitation = await Invitation.create(
                tenant_id=tenant.id,
                email=email,
                role=role,
                token_hash=hash_invitation_token(token),
                invited_by_id=principal.user_id,
                expires_at=now + ttl,
            )
            await audit.record(
                actions.MEMBER_INVITED,
                tenant_id=tenant.id,
                actor=_actor(principal),
                target=("Invitation", invitation.id),
                metadata={"email": email, "role": role, "emailed": send_email},
            )
            if send_email:
                outbox.enqueue(mail.SEND_INVITATION_JOB, "public", invitation.id)
                return invitation, None
        return invitation, token

    async def reissue_for_mail(self, invitation_id: int) -> tuple[Invitation, str] | None:
        """For the mail job: a fresh token for a still-pending invitation (its hash replaces
        the old one, so only the mailed link works), or None when there is nothing to send.
        A retried job mails a new token; the earlier one stops working."""
        async with public_tx():
            invitation = (
                await Invitation.filter(id=invitation_id)
                .select_for_update()
                .prefetch_related("tenant", "invited_by")
                .first()
            )
            now = datetime.now(UTC)
            if (
                invitation is None
                or invitation.accepted_at is not None
                or invitation.revoked_at is not None
                or invitation.expires_at <= now
            ):
                return None
            token = secrets.token_urlsafe(32)
            invitation.token_hash = hash_invitation_token(token)
            await invitation.save(update_fields=["token_hash"])
        return invitation, token

    async def revoke_invitation(self, principal: Principal, invitation_id: int) -> Invitation:
        async with public_tx():
            await self._lock_tenant(principal.tenant_id)
            invitation = await self._pending(principal.tenant_id).get_or_none(id=invitation_id)
            if invitation is None:
                raise NotFound("Invitation", invitation_id)
            refusal = rules.role_change_refusal(principal.role, None, invitation.role, owners=0)
            if refusal:
                raise PermissionDenied(refusal)
            invitation.revoked_at = datetime.now(UTC)
            await invitation.save(update_fields=["revoked_at"])
            await audit.record(
                actions.INVITATION_REVOKED,
                tenant_id=principal.tenant_id,
                actor=_actor(principal),
                target=("Invitation", invitation.id),
                metadata={"email": invitation.email},
            )
        return invitation

    async def accept(
        self,
        token: str,
        *,
        user_id: int | None = None,
        email: str | None = None,
        password: str | None = None,
        display_name: str = "",
    ) -> Accepted:
        """Accept as the signed-in user (`user_id`), or sign up with `email` + `password`.

        The invitation must be pending and addressed to that e-mail; it is used up here."""
        password_hash = None
        if user_id is None:
            if not email or not password:
                raise ValidationFailed(
                    FieldError("email", "sign in, or give the invited e-mail and a password")
                )
            problem = rules.check_password(password)
            if problem:
                raise ValidationFailed(problem)
            password_hash = await asyncio.to_thread(_hasher.hash, password)
        async with public_tx():
            invitation = (
                await self._pending(None)
                .filter(token_hash=hash_invitation_token(token))
                .select_for_update()
                .first()
            )
            if invitation is None:
                raise ValidationFailed(FieldError("token", "invalid, used or expired invitation"))
            tenant = await self._lock_tenant(invitation.tenant_id)
            if user_id is not None:
                user = await User.get_or_none(id=user_id, is_active=True)
                if user is None or user.email != invitation.email:
                    raise PermissionDenied("this invitation is for another e-mail address")
            else:
                assert password_hash is not None and email is not None
                if rules.normalize_email(email) != invitation.email:
                    raise ValidationFailed(FieldError("email", "is not the invited address"))
                if await User.filter(email=invitation.email).exists():
                    raise ValidationFailed(
                        FieldError("email", "already registered: sign in, then accept")
                    )
                user = await User.create(
                    email=invitation.email,
                    password_hash=password_hash,
                    display_name=display_name.strip(),
                )
            if await Membership.filter(tenant_id=tenant.id, user_id=user.id).exists():
                raise ValidationFailed(FieldError("token", "already a member of this tenant"))
            await self.check_seats(tenant, pending_invitations=False)
            membership = await Membership.create(user=user, tenant=tenant, role=invitation.role)
            invitation.accepted_at = datetime.now(UTC)
            invitation.accepted_by_id = user.id
            await invitation.save(update_fields=["accepted_at", "accepted_by_id"])
            await audit.record(
                actions.INVITATION_ACCEPTED,
                tenant_id=tenant.id,
                actor=Actor(user_id=user.id),
                target=("Membership", membership.id),
                metadata={"email": user.email, "role": invitation.role},
            )
        return Accepted(user=user, tenant=tenant, membership=membership)

    async def change_role(self, principal: Principal, membership_id: int, role: str) -> Membership:
        problem = rules.check_role(role)
        if problem:
            raise ValidationFailed(problem)
        async with public_tx():
            await self._lock_tenant(principal.tenant_id)
            member = await self._member(principal.tenant_id, membership_id)
            owners = await Membership.filter(tenant_id=principal.tenant_id, role="owner").count()
            refusal = rules.role_change_refusal(principal.role, member.role, role, owners)
            if refusal:
                raise PermissionDenied(refusal)
            previous, member.role = member.role, role
            await member.save(update_fields=["role"])
            if previous != role:  # their tokens name the old role: refused within seconds
                sessions.revoke_after_commit(member.user.id)
            await audit.record(
                actions.MEMBER_ROLE_CHANGED,
                tenant_id=principal.tenant_id,
                actor=_actor(principal),
                target=("Membership", member.id),
                metadata={"email": member.user.email, "from": previous, "to": role},
            )
        return member

    async def remove(self, principal: Principal, membership_id: int) -> Membership:
        """Remove a member; their refresh tokens for this tenant are revoked at once, and
        their access tokens within seconds (domain/accounts/sessions.py: all of the user's,
        whichever tenant they name; their other tenants' refresh tokens get new ones)."""
        async with public_tx():
            await self._lock_tenant(principal.tenant_id)
            member = await self._member(principal.tenant_id, membership_id)
            owners = await Membership.filter(tenant_id=principal.tenant_id, role="owner").count()
            refusal = rules.role_change_refusal(principal.role, member.role, None, owners)
            if refusal:
                raise PermissionDenied(refusal)
            await member.delete()
            await RefreshToken.filter(
                user_id=member.user.id, tenant_id=principal.tenant_id, revoked_at=None
            ).update(revoked_at=datetime.now(UTC))
            sessions.revoke_after_commit(member.user.id)
            await audit.record(
                actions.MEMBER_REMOVED,
                tenant_id=principal.tenant_id,
                actor=_actor(principal),
                target=("Membership", membership_id),
                metadata={"email": member.user.email, "role": member.role},
            )
        return member

    async def list_members(
        self, tenant_id: int, *, first: int | None = None, after: str | None = None
    ) -> Page[Membership]:
        limit = check_first(first)
        query = Membership.filter(tenant_id=tenant_id)
        if after:
            _, ident = decode_cursor(after, "member")
            query = query.filter(id__gt=ident)
        async with public_tx():
            rows = await query.order_by("id").limit(limit + 1).prefetch_related("user")
        items = rows[:limit]
        return Page(
            items,
            [encode_cursor("member", m.id, m.id) for m in items],
            has_next_page=len(rows) > limit,
            has_previous_page=bool(after),
        )

    async def list_invitations(
        self,
        tenant_id: int,
        *,
        pending_only: bool = True,
        first: int | None = None,
        after: str | None = None,
    ) -> Page[Invitation]:
        """Invitations, newest first (only the pending ones unless `pending_only` is off)."""
        query = self._pending(tenant_id) if pending_only else Invitation.filter(tenant_id=tenant_id)
        async with public_tx():
            return await newest_first(query, first, after, "invitation")

    async def members_by_ids(self, tenant_id: int, ids: list[int]) -> dict[int, Membership]:
        async with public_tx():
            rows = await Membership.filter(tenant_id=tenant_id, id__in=ids).prefetch_related("user")
        return {m.id: m for m in rows}

    async def invitations_by_ids(self, tenant_id: int, ids: list[int]) -> dict[int, Invitation]:
        async with public_tx():
            rows = await Invitation.filter(tenant_id=tenant_id, id__in=ids)
        return {i.id: i for i in rows}

    def _pending(self, tenant_id: int | None) -> QuerySet[Invitation]:
        query = Invitation.filter(
            accepted_at=None, revoked_at=None, expires_at__gt=datetime.now(UTC)
        )
        return query if tenant_id is None else query.filter(tenant_id=tenant_id)

    async def _lock_tenant(self, tenant_id: int) -> Tenant:
        tenant = await Tenant.filter(id=tenant_id).select_for_update().first()
        if tenant is None:
            raise NotFound("Tenant", tenant_id)
        return tenant

    async def _member(self, tenant_id: int, membership_id: int) -> Membership:
        member = (
            await Membership.filter(tenant_id=tenant_id, id=membership_id)
            .select_for_update()
            .prefetch_related("user")
            .first()
        )
        if member is None:
            raise NotFound("Member", membership_id)
        return member


members = MemberService()
