"""Automatic persisted queries (Apollo's protocol) and per-tenant allow-lists.

A request may carry `extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}`:

- hash only: the query text is looked up (Redis, per tenant); unknown → an error with the
  message `PersistedQueryNotFound` and code PERSISTED_QUERY_NOT_FOUND, and the client sends
  the hash again with the query;
- hash and query: the hash must be the query's SHA-256; once the query has passed parsing and
  validation it is stored for `limits.apq_ttl_seconds` after its last use.

A tenant in allow-list mode (`tenant.persisted_queries_only`) runs only the documents
registered for it (`allowed_query`, `trendscope tenants allow-query`), by hash; anything else
is refused with PERSISTED_QUERY_NOT_ALLOWED. The allow-list lives in PostgreSQL (it is
configuration, not a cache); APQ entries live in Redis (losing them costs one round trip).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any

import structlog
from graphql import GraphQLError, GraphQLSchema, parse, validate
from redis.exceptions import RedisError

from core.runtime import runtime
from core.settings import Settings
from domain.accounts.service import Principal
from tenants.models import AllowedQuery, Tenant
from tenants.policy import policies
from tenants.tx import public_tx

log = structlog.get_logger(__name__)

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"
PERSISTED_QUERY_INVALID = "PERSISTED_QUERY_INVALID"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class PersistedQueryError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def graphql_error(self) -> GraphQLError:
        return GraphQLError(self.message, extensions={"code": self.code})


def sha256_hex(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


@dataclass
class Resolved:
    """The query to run, and the hash to store it under once it has validated (or None)."""

    query: str | None
    store_as: str | None = None


class PersistedQueries:
    def __init__(self) -> None:
        # (tenant id, hash) → (expiry, query): allowed documents, positive answers only
        self._allowed: dict[tuple[int, str], tuple[float, str]] = {}

    @staticmethod
    def _key(settings: Settings, principal: Principal | None, sha: str) -> str:
        scope = principal.tenant_schema if principal else "public"
        return f"{settings.apq_key_prefix}:{scope}:{sha}"

    async def resolve(
        self,
        settings: Settings,
        principal: Principal | None,
        query: str | None,
        extensions: dict[str, Any] | None,
    ) -> Resolved:
        persisted = (extensions or {}).get("persistedQuery")
        only = False
        if principal is not None:
            ttl = settings.limits.tenant_policy_ttl_seconds
            only = (await policies.get(principal.tenant_id, ttl)).persisted_queries_only
        if persisted is None:
            if only:
                raise PersistedQueryError(
                    "This tenant runs only its registered persisted queries; send"
                    " extensions.persistedQuery with a registered sha256Hash.",
                    PERSISTED_QUERY_NOT_ALLOWED,
                )
            return Resolved(query)
        sha = self._check(persisted)
        if query is not None and sha256_hex(query) != sha:
            raise PersistedQueryError("provided sha does not match query", PERSISTED_QUERY_INVALID)
        if only:
            assert principal is not None
            allowed = await self.allowed_query(principal.tenant_id, sha, settings)
            if allowed is None:
                raise PersistedQueryError(
                    "This query is not on the tenant's allow-list.", PERSISTED_QUERY_NOT_ALLOWED
                )
            return Resolved(allowed)
        if query is not None:
            return Resolved(query, store_as=sha)
        redis = runtime.redis
        stored = None
        if redis is not None:
            try:
                stored = await redis.getex(
                    self._key(settings, principal, sha), ex=settings.limits.apq_ttl_seconds
                )
            except RedisError as exc:  # a cache: without it the client sends the query
                log.warning("apq_redis_unavailable", error=str(exc))
        if stored is None:
            raise PersistedQueryError("PersistedQueryNotFound", PERSISTED_QUERY_NOT_FOUND)
        return Resolved(stored.decode() if isinstance(stored, bytes) else str(stored))

    async def store(
        self, settings: Settings, principal: Principal | None, sha: str, query: str
    ) -> None:
        if runtime.redis is None:
            return
        try:
            await runtime.redis.set(
                self._key(settings, principal, sha), query, ex=settings.limits.apq_ttl_seconds
            )
        except RedisError as exc:
            log.warning("apq_redis_unavailable", error=str(exc))

    @staticmethod
    def _check(persisted: object) -> str:
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise PersistedQueryError(
                "Unsupported persisted query version (only version 1 is supported).",
                PERSISTED_QUERY_INVALID,
            )
        sha = persisted.get("sha256Hash")
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha.lower()):
            raise PersistedQueryError(
                "persistedQuery.sha256Hash must be a SHA-256 in hex.", PERSISTED_QUERY_INVALID
            )
        return sha.lower()

    async def allowed_query(self, tenant_id: int, sha: str, settings: Settings) -> str | None:
        now = time.monotonic()
        hit = self._allowed.get((tenant_id, sha))
        if hit is not None and hit[0] > now:
            return hit[1]
        rows = await AllowedQuery.filter(tenant_id=tenant_id, sha256=sha).values_list(
            "query", flat=True
        )
        if not rows:
            return None
        query = str(rows[0])
        ttl = settings.limits.tenant_policy_ttl_seconds
        if ttl > 0:
            self._allowed[(tenant_id, sha)] = (now + ttl, query)
        return query

    # --- administration (CLI) -----------------------------------------------------------------

    async def allow(
        self, slug: str, query: str, graphql_schema: GraphQLSchema, *, enforce: bool | None = None
    ) -> str:
        """Register `query` for tenant `slug` (it must be valid against `graphql_schema`, the
        executable schema's, which imports this module) and return its hash; `enforce`
        switches the tenant's allow-list mode on or off."""
        try:
            document = parse(query)
        except GraphQLError as exc:
            raise ValueError(f"the query does not parse: {exc.message}") from exc
        errors = validate(graphql_schema, document)
        if errors:
            raise ValueError("the query is not valid: " + "; ".join(e.message for e in errors))
        sha = sha256_hex(query)
        async with public_tx():
            tenant = await Tenant.get_or_none(slug=slug)
            if tenant is None:
                raise LookupError(f"no tenant {slug!r}")
            await AllowedQuery.update_or_create(
                defaults={"query": query}, tenant_id=tenant.id, sha256=sha
            )
            if enforce is not None and tenant.persisted_queries_only != enforce:
                tenant.persisted_queries_only = enforce
                await tenant.save(update_fields=["persisted_queries_only"])
        policies.invalidate(tenant.id)
        return sha

    async def set_enforced(self, slug: str, enforce: bool) -> None:
        async with public_tx():
            updated = await Tenant.filter(slug=slug).update(persisted_queries_only=enforce)
            if not updated:
                raise LookupError(f"no tenant {slug!r}")
        policies.invalidate()


persisted_queries = PersistedQueries()
