"""People and their access (public schema)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from tenants.models import Tenant

ROLES = ("owner", "admin", "analyst", "viewer")


class User(Model):
    id = fields.BigIntField(primary_key=True)
    email = fields.CharField(max_length=320, unique=True)  # stored lower-cased
    password_hash = fields.CharField(max_length=255, null=True)
    display_name = fields.CharField(max_length=200, default="")
    is_active = fields.BooleanField(default=True)
    # Set when the user proved they read mail at `email` (a verification or reset link, or a
    # provider that vouches for the address); cleared if the address ever changes.
    email_verified_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        schema = "public"
        table = "user_account"


class Membership(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "public.User", related_name="memberships", on_delete=fields.CASCADE
    )
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "public.Tenant", related_name="memberships", on_delete=fields.CASCADE
    )
    role = fields.CharField(max_length=16)  # one of ROLES (varchar, never a PG enum)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        schema = "public"
        table = "membership"
        unique_together = (("user", "tenant"),)


class RefreshToken(Model):
    """One row per issued refresh token; only its SHA-256 is stored.

    Tokens of one login form a family; using a token rotates it (marks it used and issues the
    next one). Presenting an already-used token revokes the whole family.
    """

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "public.User", related_name="refresh_tokens", on_delete=fields.CASCADE
    )
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "public.Tenant", related_name="+", on_delete=fields.CASCADE
    )
    user_id: int  # the foreign keys' columns, for type checkers
    tenant_id: int
    token_hash = fields.CharField(max_length=64, unique=True)
    family = fields.UUIDField(db_index=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        schema = "public"
        table = "refresh_token"


class UserIdentity(Model):
    """An external sign-in (OIDC / OAuth provider account) linked to a user.

    `subject` is the provider's stable id (OIDC `sub`, GitHub's numeric user id), never the
    e-mail, which can change or be reassigned at the provider.
    """

    id = fields.BigIntField(primary_key=True)
    provider = fields.CharField(max_length=32)  # the settings key: "google", "github", ...
    subject = fields.CharField(max_length=255)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "public.User", related_name="identities", on_delete=fields.CASCADE
    )
    user_id: int
    email = fields.CharField(max_length=320, null=True)  # as the provider last reported it
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        schema = "public"
        table = "user_identity"
        unique_together = (("provider", "subject"),)


class OneTimeToken(Model):
    """A single-use, expiring token sent by e-mail (verification, password reset).

    Only the SHA-256 is stored; the token itself exists in the e-mail alone. `email` is the
    address it was sent to: a verification token stops working if the user's address changed.
    """

    id = fields.BigIntField(primary_key=True)
    purpose = fields.CharField(max_length=24)  # one of domain.accounts.mail.PURPOSES
    token_hash = fields.CharField(max_length=64, unique=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "public.User", related_name="one_time_tokens", on_delete=fields.CASCADE
    )
    user_id: int
    email = fields.CharField(max_length=320)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        schema = "public"
        table = "one_time_token"
