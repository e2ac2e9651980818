"""Live GraphQL subscriptions of this process, counted per tenant schema.

The websocket endpoints (api/graphql/ws.py) register here when they start; the `usage` field
(schema/accounts/types.py) reads the count from here, so that the schema
does not import the transport that runs it."""

from __future__ import annotations

import weakref
from typing import Protocol


class SubscriptionCounter(Protocol):
    def tenant_subscriptions(self, tenant_schema: str) -> int: ...


_COUNTERS: weakref.WeakSet[SubscriptionCounter] = weakref.WeakSet()


def register(counter: SubscriptionCounter) -> None:
    _COUNTERS.add(counter)


def unregister(counter: SubscriptionCounter) -> None:
    _COUNTERS.discard(counter)


def live_subscriptions(tenant_schema: str) -> int:
    """Open subscriptions of one tenant on this process's endpoints."""
    return sum(counter.tenant_subscriptions(tenant_schema) for counter in list(_COUNTERS))
