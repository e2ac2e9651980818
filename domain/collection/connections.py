"""A tenant's platform credentials: stored encrypted, never returned, marked broken when the
platform refuses them. Runs inside the caller's tenant transaction; never commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from domain import events
from domain.audit import service as actions
from domain.audit.service import Actor, audit
from domain.collection.connectors import OPTIONAL_SECRET_FIELDS, SECRET_FIELDS
from domain.collection.models import PlatformConnection
from domain.collection.secrets import CredentialCipher, cipher_from_settings
from domain.errors import FieldError, NotFound, ValidationFailed
from tenants import outbox

MAX_SECRET_LENGTH = 4096


def check_secrets(platform: str, secrets: Mapping[str, str]) -> dict[str, str]:
    """The credential fields the platform needs, trimmed; unknown or missing ones refused."""
    if platform not in SECRET_FIELDS:
        raise ValidationFailed(FieldError("platform", f"must be one of {', '.join(SECRET_FIELDS)}"))
    wanted = SECRET_FIELDS[platform]
    allowed = (*wanted, *OPTIONAL_SECRET_FIELDS.get(platform, ()))
    given = {k: v.strip() for k, v in secrets.items()}
    errors = [
        FieldError(f"secrets.{k}", "unknown for this platform") for k in given if k not in allowed
    ]
    if platform == "tiktok":  # a client key + secret pair, or an access token alone
        if not (
            given.get("access_token") or (given.get("client_key") and given.get("client_secret"))
        ):
            errors.append(
                FieldError("secrets", "give access_token, or client_key and client_secret")
            )
    else:
        errors += [FieldError(f"secrets.{k}", "is required") for k in wanted if not given.get(k)]
    errors += [
        FieldError(f"secrets.{k}", f"longer than {MAX_SECRET_LENGTH} characters")
        for k, v in given.items()
        if len(v) > MAX_SECRET_LENGTH
    ]
    if errors:
        raise ValidationFailed(errors)
    return {k: v for k, v in given.items() if v}


class ConnectionService:
    def __init__(self, cipher: CredentialCipher | None = None) -> None:
        self._cipher = cipher

    @property
    def cipher(self) -> CredentialCipher:
        if self._cipher is None:
            self._cipher = cipher_from_settings()
        return self._cipher

    async def connect(
        self,
        platform: str,
        secrets: Mapping[str, str],
        label: str = "",
        *,
        tenant_id: int,
        actor: Actor | None = None,
        via: str | None = None,
    ) -> PlatformConnection:
        """Store (or replace) the tenant's credential for `platform`; it starts `active`.
        Audited as `credential.connected` (`via`, e.g. "oauth", when not typed in)."""
        clean = check_secrets(platform, secrets)
        token = self.cipher.encrypt_json(clean)
        conn = await PlatformConnection.filter(platform=platform).select_for_update().first()
        if conn is None:
            conn = await PlatformConnection.create(
                platform=platform, label=label[:100], secret=token, status="active"
            )
        else:
            conn.secret, conn.label, conn.status = token, label[:100], "active"
            conn.broken_reason = None  # type: ignore[assignment]
            await conn.save()
        metadata = {"platform": platform} | ({"via": via} if via else {})
        await audit.record(
            actions.CREDENTIAL_CONNECTED,
            tenant_id=tenant_id,
            actor=actor,
            target=("PlatformConnection", conn.id),
            metadata=metadata,
        )
        return conn

    async def disconnect(
        self, platform: str, *, tenant_id: int, actor: Actor | None = None
    ) -> PlatformConnection:
        """Forget the credential (the row stays, status `disconnected`, for the history).
        Audited as `credential.disconnected`."""
        conn = await PlatformConnection.filter(platform=platform).select_for_update().first()
        if conn is None or conn.status == "disconnected":
            raise NotFound("PlatformConnection", platform)
        conn.status, conn.secret = "disconnected", ""
        await conn.save()
        await audit.record(
            actions.CREDENTIAL_DISCONNECTED,
            tenant_id=tenant_id,
            actor=actor,
            target=("PlatformConnection", conn.id),
            metadata={"platform": conn.platform},
        )
        return conn

    async def by_ids(self, ids: Sequence[int]) -> dict[int, PlatformConnection]:
        """The tenant's connections with these ids (the read side: nodes, subscriptions)."""
        return {c.id: c for c in await PlatformConnection.filter(id__in=list(ids))}

    async def list(self) -> list[PlatformConnection]:
        return await PlatformConnection.all().order_by("platform")

    async def secrets_for(
        self, platform: str, *fallbacks: str
    ) -> tuple[PlatformConnection, dict[str, str]]:
        """The active credential for `platform` (else the first active of `fallbacks`, e.g. a
        scraper), decrypted, for a job; re-encrypted under the current key when it was made
        with an older one (lazy rotation)."""
        conn = None
        for source in (platform, *fallbacks):
            conn = await PlatformConnection.filter(platform=source, status="active").first()
            if conn is not None:
                break
        if conn is None:
            raise NotFound("PlatformConnection", platform)
        secrets = self.cipher.decrypt_json(conn.secret)
        conn.last_used_at = datetime.now(UTC)
        if self.cipher.needs_rotation(conn.secret):
            conn.secret = self.cipher.rotate(conn.secret)
        await conn.save()
        return conn, secrets

    async def replace_secrets(self, conn: PlatformConnection, secrets: Mapping[str, str]) -> None:
        """Store renewed secrets (a refreshed OAuth token) for a connection already locked by
        the caller (`select_for_update`); status and label stay."""
        conn.secret = self.cipher.encrypt_json(check_secrets(conn.platform, secrets))
        await conn.save(update_fields=["secret"])

    async def mark_broken(self, platform: str, reason: str) -> None:
        """The platform refused the credential: stop using it and tell the tenant."""
        conn = await PlatformConnection.filter(platform=platform).select_for_update().first()
        if conn is None or conn.status != "active":
            return
        conn.status, conn.broken_reason = "broken", reason[:1000]
        await conn.save()
        outbox.publish(
            events.PLATFORM_CONNECTION_BROKEN,
            {"id": conn.id, "platform": platform, "reason": conn.broken_reason},
        )


connections = ConnectionService()
