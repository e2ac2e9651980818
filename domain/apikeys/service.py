"""API keys and partner apps: create (secret shown once), list, revoke, and resolve a
presented credential to a `Principal`.

These rows live in the public schema (schema-qualified), so the service works inside the
caller's tenant transaction (mutations) or opens a short `public_tx` (reads at the edge).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from tortoise.expressions import Q

from core.settings import Settings
from domain.accounts import tokens
from domain.accounts.service import Principal
from domain.apikeys import rules
from domain.apikeys.models import ApiKey, PartnerApp
from domain.audit import service as actions
from domain.audit.service import Actor, audit
from domain.entitlements import check_within, ensure_feature
from domain.errors import (
    AuthenticationFailed,
    FieldError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tenants.plans import plan_for
from tenants.tx import public_tx


@dataclass(frozen=True)
class CreatedApiKey:
    row: ApiKey
    key: str  # shown once


@dataclass(frozen=True)
class CreatedPartnerApp:
    row: PartnerApp
    client_secret: str  # shown once


@dataclass(frozen=True)
class ClientToken:
    access_token: str
    expires_in: int
    scopes: frozenset[str]


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response: `error` is the registered code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _require_person(principal: Principal) -> int:
    """Only a person creates credentials: a key cannot mint keys (no privilege laundering)."""
    if principal.user_id is None:
        raise PermissionDenied("only a signed-in member can create API keys and partner apps")
    return principal.user_id


def _check(principal: Principal, name: str, scopes: list[str]) -> None:
    problems = [
        e for e in (rules.check_name(name), rules.check_scopes(scopes, principal.scopes)) if e
    ]
    if problems:
        raise ValidationFailed(problems)


def _key_actor(principal: Principal) -> str | None:
    """The acting key or app ("key:<prefix>", "app:<client id>"), None for a person."""
    return None if principal.credential.startswith("user:") else principal.credential


Credential = TypeVar("Credential", ApiKey, PartnerApp)


async def _revoke(
    model: type[Credential],
    principal: Principal,
    row_id: int,
    action: str,
    describe: Callable[[Credential], dict[str, Any]],
    now: datetime | None,
) -> Credential:
    """Revoke one of the tenant's keys or apps (idempotent), audited the first time."""
    row = await model.filter(id=row_id, tenant_id=principal.tenant_id).select_for_update().first()
    if row is None:
        raise NotFound(model.__name__, row_id)
    if row.revoked_at is None:
        row.revoked_at = now or datetime.now(UTC)
        await row.save(update_fields=["revoked_at"])
        await audit.record(
            action,
            tenant_id=principal.tenant_id,
            actor=Actor(user_id=principal.user_id, key=_key_actor(principal)),
            target=(model.__name__, row.id),
            metadata={"name": row.name, **describe(row)},
        )
    return row


class ApiKeyService:
    # --- API keys -------------------------------------------------------------------------

    async def create_key(
        self,
        principal: Principal,
        *,
        name: str,
        scopes: list[str],
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> CreatedApiKey:
        user_id = _require_person(principal)
        _check(principal, name, scopes)
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)  # a time without an offset is UTC
        if expires_at is not None and expires_at <= (now or datetime.now(UTC)):
            raise ValidationFailed(FieldError("expiresAt", "must be in the future"))
        await ensure_feature(principal.tenant_id, "partner_api")
        key, prefix, key_hash = rules.new_api_key()
        row = await ApiKey.create(
            tenant_id=principal.tenant_id,
            created_by_id=user_id,
            name=name.strip(),
            prefix=prefix,
            key_hash=key_hash,
            scopes=sorted(set(scopes)),
            expires_at=expires_at,
        )
        await audit.record(
            actions.API_KEY_CREATED,
            tenant_id=principal.tenant_id,
            actor=Actor(user_id=user_id),
            target=("ApiKey", row.id),
            metadata={"name": row.name, "prefix": prefix, "scopes": row.scopes},
        )
        return CreatedApiKey(row=row, key=key)

    async def list_keys(self, tenant_id: int) -> list[ApiKey]:
        async with public_tx():
            return await ApiKey.filter(tenant_id=tenant_id).order_by("-id")

    async def revoke_key(
        self, principal: Principal, key_id: int, now: datetime | None = None
    ) -> ApiKey:
        return await _revoke(
            ApiKey, principal, key_id, actions.API_KEY_REVOKED, lambda r: {"prefix": r.prefix}, now
        )

    async def principal_for_key(
        self, settings: Settings, key: str, now: datetime | None = None
    ) -> Principal:
        """The principal an API key stands for; its `last_used_at` is refreshed at most once
        per `api_key_touch_seconds` (the read returns it, so most requests write nothing)."""
        now = now or datetime.now(UTC)
        prefix = rules.parse_api_key(key)
        if prefix is None:
            raise AuthenticationFailed("invalid API key")
        async with public_tx():
            row = await ApiKey.filter(prefix=prefix).select_related("tenant").first()
            if row is None or not rules.secret_matches(key, row.key_hash):
                raise AuthenticationFailed("invalid API key")
            if row.revoked_at is not None:
                raise AuthenticationFailed("API key revoked")
            if row.expires_at is not None and row.expires_at <= now:
                raise AuthenticationFailed("API key expired")
            tenant = row.tenant
            if not tenant.is_active:
                raise AuthenticationFailed("invalid API key")
            check_within(plan_for(tenant.plan), "partner_api", 0, 0)
            stale = now - timedelta(seconds=settings.api_key_touch_seconds)
            if row.last_used_at is None or row.last_used_at <= stale:
                await ApiKey.filter(
                    Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale), id=row.id
                ).update(last_used_at=now)
        return Principal(
            user_id=None,
            tenant_id=tenant.id,
            tenant_schema=tenant.schema_name,
            role="api_key",
            scopes=frozenset(row.scopes),
            credential=f"key:{row.prefix}",
        )

    # --- partner apps (OAuth 2.0 client credentials) --------------------------------------

    async def create_app(
        self, principal: Principal, *, name: str, scopes: list[str]
    ) -> CreatedPartnerApp:
        user_id = _require_person(principal)
        _check(principal, name, scopes)
        await ensure_feature(principal.tenant_id, "partner_api")
        client_id, secret, secret_hash = rules.new_client_credentials()
        row = await PartnerApp.create(
            tenant_id=principal.tenant_id,
            created_by_id=user_id,
            name=name.strip(),
            client_id=client_id,
            secret_hash=secret_hash,
            scopes=sorted(set(scopes)),
        )
        await audit.record(
            actions.PARTNER_APP_CREATED,
            tenant_id=principal.tenant_id,
            actor=Actor(user_id=user_id),
            target=("PartnerApp", row.id),
            metadata={"name": row.name, "client_id": client_id, "scopes": row.scopes},
        )
        return CreatedPartnerApp(row=row, client_secret=secret)

    async def list_apps(self, tenant_id: int) -> list[PartnerApp]:
        async with public_tx():
            return await PartnerApp.filter(tenant_id=tenant_id).order_by("-id")

    async def revoke_app(
        self, principal: Principal, app_id: int, now: datetime | None = None
    ) -> PartnerApp:
        return await _revoke(
            PartnerApp,
            principal,
            app_id,
            actions.PARTNER_APP_REVOKED,
            lambda r: {"client_id": r.client_id},
            now,
        )

    async def client_credentials_token(
        self, settings: Settings, client_id: str, client_secret: str, scope: str | None
    ) -> ClientToken:
        """RFC 6749 §4.4.2-3: authenticate the client, check the scope, issue our JWT."""
        async with public_tx():
            row = await PartnerApp.filter(client_id=client_id).select_related("tenant").first()
            if (
                row is None
                or not rules.secret_matches(client_secret, row.secret_hash)
                or row.revoked_at is not None
                or not row.tenant.is_active
            ):
                raise OAuthError("invalid_client", "client authentication failed")
            plan = plan_for(row.tenant.plan)
            if not plan.partner_api:
                raise OAuthError(
                    "unauthorized_client", f"the {plan.name} plan does not include the partner API"
                )
            allowed = frozenset(row.scopes)
            wanted = rules.parse_scope_param(scope)
            if wanted is None:
                wanted = allowed
            elif not wanted <= allowed:
                raise OAuthError(
                    "invalid_scope",
                    f"not granted to this client: {' '.join(sorted(wanted - allowed))}",
                )
            await PartnerApp.filter(id=row.id).update(last_used_at=datetime.now(UTC))
        access, _ = tokens.issue_client_token(
            secret=settings.secret_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.partner_token_ttl_seconds,
            client_id=row.client_id,
            tenant_id=row.tenant.id,
            tenant_schema=row.tenant.schema_name,
            scopes=wanted,
        )
        return ClientToken(
            access_token=access, expires_in=settings.partner_token_ttl_seconds, scopes=wanted
        )

    async def principal_for_client(self, claims: tokens.ClientClaims) -> Principal:
        """A partner app's token stands for its tenant and scopes while the app is live: a
        revoked app's tokens stop working at once."""
        async with public_tx():
            row = (
                await PartnerApp.filter(client_id=claims.client_id).select_related("tenant").first()
            )
        if (
            row is None
            or row.revoked_at is not None
            or row.tenant_id != claims.tenant_id
            or not row.tenant.is_active
        ):
            raise AuthenticationFailed("partner app revoked")
        check_within(plan_for(row.tenant.plan), "partner_api", 0, 0)
        return Principal(
            user_id=None,
            tenant_id=row.tenant_id,
            tenant_schema=row.tenant.schema_name,
            role="partner_app",
            scopes=claims.scopes & frozenset(row.scopes),
            credential=f"app:{row.client_id}",
        )


apikeys = ApiKeyService()
