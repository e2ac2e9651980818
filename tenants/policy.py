"""What the API needs to know about a tenant on every request: its plan (for the query cost
ceiling) and whether it runs only allow-listed persisted queries.

Read from the public `tenant` row and kept per process for `limits.tenant_policy_ttl_seconds`,
so a request costs a dict look-up, not a database round trip. Changes made through
`TenantPolicies.invalidate` apply at once in this process and within the TTL in the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tenants.models import Tenant
from tenants.pgclient import is_database_unavailable


@dataclass(frozen=True)
class TenantPolicy:
    tenant_id: int
    plan: str | None = None
    persisted_queries_only: bool = False


class TenantPolicies:
    def __init__(self) -> None:
        self._cache: dict[int, tuple[float, TenantPolicy]] = {}

    async def get(self, tenant_id: int, ttl: float) -> TenantPolicy:
        now = time.monotonic()
        hit = self._cache.get(tenant_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            rows = await Tenant.filter(id=tenant_id).values_list("plan", "persisted_queries_only")
        except Exception as exc:
            # PostgreSQL down: the last known policy beats none (the rate limiter and the
            # cost ceiling keep working on it); without one the request fails with the
            # database, as a 503 (api/unavailable.py).
            if hit is not None and is_database_unavailable(exc):
                return hit[1]
            raise
        if rows:
            plan, only = rows[0]
            policy = TenantPolicy(tenant_id, plan or None, bool(only))
        else:
            policy = TenantPolicy(tenant_id)
        if ttl > 0:
            self._cache[tenant_id] = (now + ttl, policy)
        return policy

    def invalidate(self, tenant_id: int | None = None) -> None:
        if tenant_id is None:
            self._cache.clear()
        else:
            self._cache.pop(tenant_id, None)


policies = TenantPolicies()
