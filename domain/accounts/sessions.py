"""Session versions: a user's access tokens revoked within seconds, not at their expiry.

Access tokens are stateless JWTs, so revoking them needs one shared fact per user: the
*session version*, kept in Redis (`<QUOTA_KEY_PREFIX>:sv:<user id>`). Every access token
carries `sv`, the version read when it was issued. Logging out everywhere, a password reset, a
role change and removal from a tenant raise the version after their transaction commits
(`revoke_after_commit`); a token whose `sv` is below the current version is refused, on HTTP
(api/auth.py) and on open websockets (api/graphql/ws.py, which also hear the revocation on the
`<QUOTA_KEY_PREFIX>:sessions-revoked` channel and close the user's sockets with 4403).

Versions are strictly increasing and close to the revocation's time in milliseconds
(`max(current + 1, now_ms)`), so a key that expired (`access_token_ttl_seconds` after the last
revocation, when every token issued before it has expired too) and starts again from 0 can
never let an old token pass a later revocation.

Cost: a request reads the version from an in-process cache refreshed at most every
`session_check_seconds` (default 2) per user, so at most one Redis GET per user per process in
that time. A revocation applies at once in the process that made it and, through the pub/sub
message, in the others; if that message is lost (Redis restarting), within
`session_check_seconds`. If Redis cannot be reached, the last version this process saw is used
and tokens of users it knows nothing about pass (fail open, logged): a cache outage must not
log everyone out, and access tokens expire anyway (`access_token_ttl_seconds`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import structlog
from redis.exceptions import RedisError

from core.runtime import runtime
from core.settings import Settings, get_settings
from domain.errors import AuthenticationFailed
from tenants.tx import current_tx_or_none

log = structlog.get_logger(__name__)

# KEYS[1]: the user's version key. ARGV: now (ms), key ttl (ms), channel, user id.
_REVOKE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local version = math.max(current + 1, tonumber(ARGV[1]))
redis.call('SET', KEYS[1], string.format('%d', version), 'PX', tonumber(ARGV[2]))
redis.call('PUBLISH', ARGV[3],
           string.format('{"user_id": %d, "version": %d}', tonumber(ARGV[4]), version))
return string.format('%d', version)
"""

REVOKED_MESSAGE = "access token revoked: sign in again or refresh the token"


def version_key(settings: Settings, user_id: int) -> str:
    return f"{settings.quota_key_prefix}:sv:{user_id}"


def revocation_channel(settings: Settings) -> str:
    return f"{settings.quota_key_prefix}:sessions-revoked"


def parse_revocation(payload: object) -> tuple[int, int] | None:
    """(user id, version) from a revocation message, None when malformed."""
    if not isinstance(payload, dict):
        return None
    try:
        return int(payload["user_id"]), int(payload["version"])
    except (KeyError, TypeError, ValueError):
        return None


class SessionVersions:
    """The per-process view of the users' session versions (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._cache: dict[int, tuple[float, int]] = {}  # user -> (fresh until, version)
        self._down = False  # logs one warning per outage, not one per request

    def heard(self, user_id: int, version: int) -> None:
        """A revocation announced by another process (or this one): applies at once."""
        _, known = self._cache.get(user_id, (0.0, 0))
        until = self.clock() + get_settings().session_check_seconds
        self._cache[user_id] = (until, max(known, version))

    def forget(self) -> None:
        self._cache.clear()

    async def current_many(
        self, settings: Settings, user_ids: Iterable[int], *, fresh: bool = False
    ) -> dict[int, int]:
        """The users' versions: cached ones still fresh, the rest in one MGET."""
        now = self.clock()
        found: dict[int, int] = {}
        missing: list[int] = []
        for user_id in set(user_ids):
            hit = self._cache.get(user_id)
            if hit is not None and hit[0] > now and not fresh:
                found[user_id] = hit[1]
            else:
                missing.append(user_id)
        if not missing:
            return found
        redis = runtime.redis
        try:
            if redis is None:
                raise RedisError("no Redis client in this process")
            raw = await redis.mget([version_key(settings, u) for u in missing])
        except RedisError as exc:
            if not self._down:
                log.warning("session_versions_unavailable", error=str(exc))
            self._down = True
            for user_id in missing:  # the last version seen, else none (fail open)
                found[user_id] = self._cache.get(user_id, (0.0, 0))[1]
            return found
        if self._down:
            log.info("session_versions_available")
            self._down = False
        until = now + settings.session_check_seconds
        if len(self._cache) > 100_000:  # bounded: drop the whole cache rather than grow
            self._cache.clear()
        for user_id, value in zip(missing, raw, strict=True):
            version = int(value) if value is not None else 0
            # never lower than a revocation already heard of (a message may beat the GET)
            version = max(version, self._cache.get(user_id, (0.0, 0))[1])
            self._cache[user_id] = (until, version)
            found[user_id] = version
        return found

    async def current(self, settings: Settings, user_id: int, *, fresh: bool = False) -> int:
        return (await self.current_many(settings, (user_id,), fresh=fresh))[user_id]

    async def for_new_token(self, settings: Settings, user_id: int) -> int:
        """The version a token issued now carries. Read before the membership (and so the
        role) the token will name: a role change committed after that read raises the version
        after it, so a token naming the old role is refused."""
        return await self.current(settings, user_id, fresh=True)

    async def check(self, settings: Settings, user_id: int, token_version: int) -> None:
        """Refuse a token issued before the user's last revocation."""
        if token_version < await self.current(settings, user_id):
            raise AuthenticationFailed(REVOKED_MESSAGE)

    async def revoke(self, user_id: int, settings: Settings | None = None) -> int | None:
        """Raise the user's version: every access token issued so far stops working. One round
        trip (a script that sets the key and publishes the revocation); None if Redis is down
        (logged: the tokens then live until they expire)."""
        settings = settings or get_settings()
        redis = runtime.redis
        if redis is None:
            log.error("session_revoke_failed", user_id=user_id, error="no Redis client")
            return None
        try:
            script = redis.register_script(_REVOKE)
            raw = await script(
                keys=[version_key(settings, user_id)],
                args=[
                    int(time.time() * 1000),
                    int(settings.access_token_ttl_seconds * 1000) + 60_000,
                    revocation_channel(settings),
                    user_id,
                ],
                client=redis,
            )
        except RedisError as exc:
            log.error("session_revoke_failed", user_id=user_id, error=str(exc))
            return None
        version = int(raw)
        self._cache[user_id] = (self.clock() + settings.session_check_seconds, version)
        log.info("sessions_revoked", user_id=user_id)
        return version

    def revoke_after_commit(self, user_id: int) -> None:
        """Revoke once the current transaction commits (at once when none is open): the
        change that warrants it must be durable first, and a rollback must not revoke."""
        tx = current_tx_or_none()

        async def run() -> None:
            await self.revoke(user_id)

        if tx is None:
            raise RuntimeError("revoke_after_commit needs an open transaction")
        tx.on_commit(run)


sessions = SessionVersions()
