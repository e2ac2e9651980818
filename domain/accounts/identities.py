"""Sign-in providers (OIDC) of a user: signing in with one, linking and unlinking.

The provider flows themselves (redirects, code exchange, hand-off codes) are in oidc.py; a
first sign-in with an unknown identity creates the account through `auth.create_account`.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from redis.asyncio import Redis
from tortoise.exceptions import IntegrityError

from core.settings import Settings
from domain.accounts import oidc, rules
from domain.accounts.models import User, UserIdentity
from domain.accounts.service import auth
from domain.errors import (
    AuthenticationFailed,
    FieldError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tenants.tx import public_tx


class IdentityService:
    async def sign_in_with_identity(
        self, settings: Settings, identity: oidc.ExternalIdentity
    ) -> int:
        """The user this provider identity signs in as: the linked one, else the account with
        the same verified address (linked now), else a new user owning a new tenant."""
        async with public_tx():
            linked = await UserIdentity.get_or_none(
                provider=identity.provider, subject=identity.subject
            ).prefetch_related("user")
            if linked is not None:
                if not linked.user.is_active:
                    raise AuthenticationFailed("this account is disabled")
                if identity.email and linked.email != identity.email:
                    linked.email = identity.email
                    await linked.save(update_fields=["email"])
                return linked.user_id
            if not identity.email or not identity.email_verified:
                raise AuthenticationFailed(
                    f"{identity.provider} did not confirm a verified e-mail address"
                )
            email = rules.normalize_email(identity.email)
            user = await User.get_or_none(email=email)
            if user is not None:
                if not user.is_active:
                    raise AuthenticationFailed("this account is disabled")
                if user.email_verified_at is None:
                    # Someone could have registered this address without owning it: linking
                    # would hand them the provider's sign-in. The owner links it after logging
                    # in with the password (or verifies the address first).
                    raise AuthenticationFailed(
                        "an account with this e-mail exists but its address is not verified: "
                        f"log in with your password and link {identity.provider} from there"
                    )
                try:
                    await UserIdentity.create(
                        provider=identity.provider,
                        subject=identity.subject,
                        user=user,
                        email=identity.email,
                    )
                except IntegrityError as exc:  # the same identity, signing in twice at once
                    raise AuthenticationFailed("a concurrent sign-in won: try again") from exc
                return user.id
        local = email.split("@", 1)[0]
        name = identity.name or local
        slug = f"{rules.slugify(local)}_{secrets.token_hex(3)}"
        user, _, _ = await auth.create_account(
            settings,
            email=email,
            password_hash=None,
            display_name=name[:200],
            tenant_name=f"{name}'s workspace"[:200],
            tenant_slug=slug,
            email_verified_at=datetime.now(UTC),
            identity=identity,
        )
        return user.id

    async def link_identity(self, user_id: int, identity: oidc.ExternalIdentity) -> UserIdentity:
        async with public_tx():
            user = await User.get_or_none(id=user_id, is_active=True)
            if user is None:
                raise AuthenticationFailed("authentication required")
            existing = await UserIdentity.get_or_none(
                provider=identity.provider, subject=identity.subject
            )
            if existing is not None:
                if existing.user_id != user_id:
                    raise PermissionDenied(
                        f"this {identity.provider} account is linked to another user"
                    )
                return existing
            try:
                created = await UserIdentity.create(
                    provider=identity.provider,
                    subject=identity.subject,
                    user_id=user_id,
                    email=identity.email,
                )
            except IntegrityError as exc:  # linked by someone else a moment ago
                raise PermissionDenied(
                    f"this {identity.provider} account is linked to another user"
                ) from exc
            if (
                identity.email_verified
                and identity.email
                and rules.normalize_email(identity.email) == user.email
                and user.email_verified_at is None
            ):
                user.email_verified_at = datetime.now(UTC)
                await user.save(update_fields=["email_verified_at"])
        return created

    async def complete_identity_link(
        self, settings: Settings, redis: Redis, user_id: int, code: str
    ) -> UserIdentity:
        """Link the identity a provider flow ended with (`/auth/complete?link_code=`), for
        the user who started it only: a link started by someone else (a link forwarded to
        a victim) is refused."""
        payload = await oidc.take_handoff_code(redis, settings, "link", code)
        if payload is None:
            raise ValidationFailed(FieldError("code", "unknown, expired or already used"))
        if int(payload["user_id"]) != user_id:
            raise PermissionDenied("this link was started by another user")
        return await self.link_identity(user_id, oidc.identity_from_dict(payload["identity"]))

    async def of_user(self, user_id: int) -> list[UserIdentity]:
        async with public_tx():
            return await UserIdentity.filter(user_id=user_id).order_by("id")

    async def unlink_identity(self, user_id: int, identity_id: int) -> None:
        async with public_tx():
            identity = await UserIdentity.get_or_none(id=identity_id, user_id=user_id)
            if identity is None:
                raise NotFound("Identity", identity_id)
            user = await User.get(id=user_id)
            others = await UserIdentity.filter(user_id=user_id).exclude(id=identity_id).count()
            if user.password_hash is None and others == 0:
                raise ValidationFailed(
                    FieldError(
                        "id",
                        "this is the account's only way to sign in: set a password "
                        "(requestPasswordReset) or link another provider first",
                    )
                )
            await identity.delete()


identities = IdentityService()
