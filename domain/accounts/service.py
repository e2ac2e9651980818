"""Who may call: sign-up, log-in (password, or the last step of a provider sign-in), token
issue, refresh and log-out (`auth`); the `Principal` and `TokenPair` they produce.

The rest of an account's flows have their own services: e-mail verification and password
reset (email_flows.py), linked sign-in providers (identities.py), the signed-in user's
memberships (users.py), a tenant's members and invitations (members.py).

These are the public (tenant-less) flows, so unlike tenant services they open their own
transactions (joining the caller's when one is open): sign-up creates the tenant schema in the
same transaction as the owner's row.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.asyncio import Redis
from tortoise.exceptions import IntegrityError

from core.settings import Settings
from domain.accounts import oidc, rules, tokens
from domain.accounts.models import Membership, RefreshToken, User, UserIdentity
from domain.accounts.sessions import sessions
from domain.audit import service as actions
from domain.audit.service import Actor, audit
from domain.errors import (
    AuthenticationFailed,
    FieldError,
    PermissionDenied,
    ValidationFailed,
)
from tenants.models import Tenant
from tenants.provisioning import provision_in_tx
from tenants.registry import schema_for_slug
from tenants.tx import public_tx, tenant_tx

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so both paths cost the same.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0000")


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    access_token_expires_at: int
    refresh_token: str
    tenant_slug: str
    role: str


@dataclass(frozen=True)
class Principal:
    """Who is calling, for which tenant, with which scopes.

    A person's token carries their `user_id` and role; an API key or a partner app's token
    has no user (`user_id` None) and only the scopes it was given. `credential` names the
    credential itself (rate limits and logs): `user:<id>`, `key:<prefix>` or `app:<client id>`.
    """

    user_id: int | None
    tenant_id: int
    tenant_schema: str
    role: str  # a member's role; "api_key" / "partner_app" for integrations (no user role)
    scopes: frozenset[str]
    credential: str = ""
    # A token's expiry (unix seconds) and a user token's session version, for websockets,
    # which outlive a request (api/graphql/ws.py closes them at expiry or revocation).
    expires_at: int | None = None
    session_version: int | None = None

    def __post_init__(self) -> None:
        if not self.credential:
            object.__setattr__(self, "credential", f"user:{self.user_id}")

    @property
    def is_user(self) -> bool:
        return self.user_id is not None


async def _verify(hash_: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(hash_, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


async def active_membership(user_id: int, tenant_slug: str | None) -> Membership:
    """The user's membership in `tenant_slug` (else their first), in an active tenant; run
    inside a public transaction."""
    query = Membership.filter(user_id=user_id, tenant__is_active=True)
    if tenant_slug is not None:
        query = query.filter(tenant__slug=tenant_slug)
    membership = await query.order_by("id").prefetch_related("tenant").first()
    if membership is None:
        if tenant_slug is not None:
            raise PermissionDenied(f"no membership in tenant {tenant_slug!r}")
        raise AuthenticationFailed("this account has no tenant")
    return membership


class AuthService:
    async def sign_up(
        self,
        settings: Settings,
        *,
        email: str,
        password: str,
        display_name: str,
        tenant_name: str,
        tenant_slug: str | None = None,
    ) -> tuple[User, Tenant, TokenPair]:
        email = rules.normalize_email(email)
        slug = tenant_slug or rules.slugify(tenant_name)
        problems = [
            e
            for e in (
                rules.check_email(email),
                rules.check_password(password),
                rules.check_slug(slug),
                None if tenant_name.strip() else FieldError("tenantName", "must not be empty"),
            )
            if e is not None
        ]
        if problems:
            raise ValidationFailed(problems)
        password_hash = await asyncio.to_thread(_hasher.hash, password)
        return await self.create_account(
            settings,
            email=email,
            password_hash=password_hash,
            display_name=display_name.strip(),
            tenant_name=tenant_name.strip(),
            tenant_slug=slug,
        )

    async def create_account(
        self,
        settings: Settings,
        *,
        email: str,
        password_hash: str | None,
        display_name: str,
        tenant_name: str,
        tenant_slug: str,
        email_verified_at: datetime | None = None,
        identity: oidc.ExternalIdentity | None = None,
    ) -> tuple[User, Tenant, TokenPair]:
        """A user owning a new tenant (schema provisioned in the same transaction)."""
        try:
            async with tenant_tx(schema_for_slug(tenant_slug)) as tx:
                if await User.filter(email=email).exists():
                    raise ValidationFailed(FieldError("email", "already registered"))
                if await Tenant.filter(slug=tenant_slug).exists():
                    raise ValidationFailed(FieldError("tenantSlug", "already taken"))
                user = await User.create(
                    email=email,
                    password_hash=password_hash,
                    display_name=display_name,
                    email_verified_at=email_verified_at,
                )
                if identity is not None:
                    await UserIdentity.create(
                        provider=identity.provider,
                        subject=identity.subject,
                        user=user,
                        email=identity.email,
                    )
                tenant = await provision_in_tx(tx, slug=tenant_slug, name=tenant_name)
                await Membership.create(user=user, tenant=tenant, role="owner")
                pair = await self._issue(settings, user, tenant, "owner")
        except IntegrityError as exc:  # a concurrent sign-up won the race
            raise ValidationFailed(FieldError("email", "already registered")) from exc
        return user, tenant, pair

    async def log_in(
        self, settings: Settings, *, email: str, password: str, tenant_slug: str | None = None
    ) -> TokenPair:
        email = rules.normalize_email(email)
        async with public_tx():
            user = await User.get_or_none(email=email, is_active=True)
        ok = await _verify(
            user.password_hash if user and user.password_hash else _DUMMY_HASH, password
        )
        if user is None or not ok:
            async with public_tx():  # committed: the caller only gets an error
                await self._record_failed_sign_in(email, user, tenant_slug)
            raise AuthenticationFailed("invalid e-mail or password")
        version = await sessions.for_new_token(settings, user.id)  # before the role is read
        async with public_tx():
            membership = await active_membership(user.id, tenant_slug)
            pair = await self._issue(
                settings, user, membership.tenant, membership.role, session_version=version
            )
            await audit.record(
                actions.SIGN_IN_SUCCEEDED,
                tenant_id=membership.tenant.id,
                actor=Actor(user_id=user.id),
                target=("User", user.id),
                metadata={"method": "password"},
            )
            return pair

    async def _record_failed_sign_in(
        self, email: str, user: User | None, tenant_slug: str | None
    ) -> None:
        """Failed sign-ins of a known account show in its tenant's log (the requested tenant,
        else its first); unknown e-mails are logged with no tenant."""
        tenant_id = None
        if user is not None:
            query = Membership.filter(user_id=user.id)
            if tenant_slug is not None:
                query = query.filter(tenant__slug=tenant_slug)
            membership = await query.order_by("id").first()
            tenant_id = membership.tenant_id if membership else None  # type: ignore[attr-defined]
        await audit.record(
            actions.SIGN_IN_FAILED,
            tenant_id=tenant_id,
            target=("User", user.id) if user else None,
            metadata={"email": email[:320], "method": "password"},
        )

    async def complete_sign_in(
        self, settings: Settings, redis: Redis, code: str, tenant_slug: str | None = None
    ) -> TokenPair:
        """Trade the one-time code of a provider sign-in for a token pair."""
        payload = await oidc.take_handoff_code(redis, settings, "login", code)
        if payload is None:
            raise AuthenticationFailed("unknown, expired or already used sign-in code")
        user_id = int(payload["user_id"])
        version = await sessions.for_new_token(settings, user_id)  # before the role is read
        async with public_tx():
            user = await User.get_or_none(id=user_id, is_active=True)
            if user is None:
                raise AuthenticationFailed("this account is disabled")
            membership = await active_membership(user.id, tenant_slug)
            pair = await self._issue(
                settings, user, membership.tenant, membership.role, session_version=version
            )
            await audit.record(
                actions.SIGN_IN_SUCCEEDED,
                tenant_id=membership.tenant.id,
                actor=Actor(user_id=user.id),
                target=("User", user.id),
                metadata={"method": "provider", "provider": str(payload.get("provider", ""))},
            )
            return pair

    async def refresh(self, settings: Settings, refresh_token: str) -> TokenPair:
        now = datetime.now(UTC)
        reused = False
        async with public_tx():
            row = (
                await RefreshToken.filter(token_hash=tokens.hash_refresh_token(refresh_token))
                .select_for_update()
                .prefetch_related("user", "tenant")
                .first()
            )
            if row is not None and (row.used_at or row.revoked_at):
                # Reuse of a rotated token: someone holds a stolen copy. Revoke the family
                # (committed even though the caller gets an error). A token revoked unused
                # (log-out, password reset) is merely invalid.
                await RefreshToken.filter(family=row.family, revoked_at=None).update(revoked_at=now)
                reused = row.used_at is not None
            elif row is not None and row.expires_at > now and row.user.is_active:
                # before the role is read (see sessions.for_new_token)
                version = await sessions.for_new_token(settings, row.user_id)
                membership = await Membership.get_or_none(
                    user_id=row.user_id, tenant_id=row.tenant_id
                )
                if membership is not None:
                    row.used_at = now
                    await row.save(update_fields=["used_at"])
                    return await self._issue(
                        settings,
                        row.user,
                        row.tenant,
                        membership.role,
                        family=row.family,
                        session_version=version,
                    )
        raise AuthenticationFailed(
            "refresh token reused; its sessions are revoked" if reused else "invalid refresh token"
        )

    async def log_out(self, refresh_token: str, *, everywhere: bool = False) -> bool:
        """Revoke the refresh token's whole family (this login's sessions); False if unknown.

        `everywhere` revokes every family of the token's user, provided the token is still
        live (a stale copy can only end its own family), and with them every access token
        already issued (domain/accounts/sessions.py, within seconds). Otherwise access tokens
        already issued stay valid until they expire (`access_token_ttl_seconds`).
        """
        now = datetime.now(UTC)
        async with public_tx():
            row = await RefreshToken.get_or_none(
                token_hash=tokens.hash_refresh_token(refresh_token)
            )
            if row is None:
                return False
            live = row.used_at is None and row.revoked_at is None and row.expires_at > now
            if everywhere and live:
                await RefreshToken.filter(user_id=row.user_id, revoked_at=None).update(
                    revoked_at=now
                )
                sessions.revoke_after_commit(row.user_id)
            else:
                await RefreshToken.filter(family=row.family, revoked_at=None).update(revoked_at=now)
        return True

    async def issue(self, settings: Settings, user: User, tenant: Tenant, role: str) -> TokenPair:
        """A new token pair (a new refresh family) for `user` in `tenant`."""
        async with public_tx():
            return await self._issue(settings, user, tenant, role)

    async def _issue(
        self,
        settings: Settings,
        user: User,
        tenant: Tenant,
        role: str,
        family: uuid.UUID | None = None,
        session_version: int | None = None,
    ) -> TokenPair:
        if session_version is None:  # a new user or a new membership: nothing to race with
            session_version = await sessions.for_new_token(settings, user.id)
        access, exp = tokens.issue_access_token(
            secret=settings.secret_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
            user_id=user.id,
            tenant_id=tenant.id,
            tenant_schema=tenant.schema_name,
            role=role,
            session_version=session_version,
        )
        refresh, refresh_hash = tokens.new_refresh_token()
        await RefreshToken.create(
            user_id=user.id,
            tenant_id=tenant.id,
            token_hash=refresh_hash,
            family=family or uuid.uuid4(),
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_token_ttl_seconds),
        )
        return TokenPair(
            access_token=access,
            access_token_expires_at=exp,
            refresh_token=refresh,
            tenant_slug=tenant.slug,
            role=role,
        )


auth = AuthService()
