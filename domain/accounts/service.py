"""Sign-up, log-in, token refresh and membership checks.

These are the public (tenant-less) flows, so unlike tenant services they open their own
transactions: sign-up creates the tenant schema in the same transaction as the owner's row.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.exceptions import IntegrityError

from api.settings import Settings
from domain.accounts import rules, tokens
from domain.accounts.models import Membership, RefreshToken, User
from domain.errors import AuthenticationFailed, FieldError, PermissionDenied, ValidationFailed
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


class AccountService:
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
        try:
            async with tenant_tx(schema_for_slug(slug)) as tx:
                if await User.filter(email=email).exists():
                    raise ValidationFailed(FieldError("email", "already registered"))
                if await Tenant.filter(slug=slug).exists():
                    raise ValidationFailed(FieldError("tenantSlug", "already taken"))
                user = await User.create(
                    email=email, password_hash=password_hash, display_name=display_name.strip()
                )
                tenant = await provision_in_tx(tx, slug=slug, name=tenant_name.strip())
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
            raise AuthenticationFailed("invalid e-mail or password")
        async with public_tx():
            membership = await self._membership(user.id, tenant_slug)
            return await self._issue(settings, user, membership.tenant, membership.role)

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
                # (committed even though the caller gets an error).
                await RefreshToken.filter(family=row.family, revoked_at=None).update(revoked_at=now)
                reused = True
            elif row is not None and row.expires_at > now and row.user.is_active:
                membership = await Membership.get_or_none(
                    user_id=row.user_id, tenant_id=row.tenant_id
                )
                if membership is not None:
                    row.used_at = now
                    await row.save(update_fields=["used_at"])
                    return await self._issue(
                        settings, row.user, row.tenant, membership.role, family=row.family
                    )
        raise AuthenticationFailed(
            "refresh token reused; its sessions are revoked" if reused else "invalid refresh token"
        )

    async def principal_for(self, user_id: int, tenant_slug: str) -> Principal:
        """The caller's principal in another of their tenants (`X-Tenant`), checked."""
        async with public_tx():
            membership = await self._membership(user_id, tenant_slug)
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

    async def get_user(self, user_id: int) -> User | None:
        async with public_tx():
            return await User.get_or_none(id=user_id)

    async def _membership(self, user_id: int, tenant_slug: str | None) -> Membership:
        query = Membership.filter(user_id=user_id, tenant__is_active=True)
        if tenant_slug is not None:
            query = query.filter(tenant__slug=tenant_slug)
        membership = await query.order_by("id").prefetch_related("tenant").first()
        if membership is None:
            if tenant_slug is not None:
                raise PermissionDenied(f"no membership in tenant {tenant_slug!r}")
            raise AuthenticationFailed("this account has no tenant")
        return membership

    async def _issue(
        self,
        settings: Settings,
        user: User,
        tenant: Tenant,
        role: str,
        family: uuid.UUID | None = None,
    ) -> TokenPair:
        access, exp = tokens.issue_access_token(
            secret=settings.secret_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
            user_id=user.id,
            tenant_id=tenant.id,
            tenant_schema=tenant.schema_name,
            role=role,
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


accounts = AccountService()
