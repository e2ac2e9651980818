"""The Stripe client: stripe-python's `StripeClient` on its async httpx transport.

One client per (API key, API base) per process. STRIPE_API_BASE points it at another address
(the tests' fake, a staging proxy). Every write passes an explicit `idempotency_key`.
"""

from __future__ import annotations

import stripe
from stripe._base_address import BaseAddresses

from core.settings import Settings
from domain.errors import ValidationFailed

_clients: dict[tuple[str, str | None], stripe.StripeClient] = {}


class BillingNotConfigured(ValidationFailed):
    pass


def stripe_client(settings: Settings) -> stripe.StripeClient:
    key = settings.stripe_api_key
    if not key:
        from domain.errors import FieldError

        raise BillingNotConfigured(FieldError("billing", "Stripe is not configured here"))
    cache_key = (key, settings.stripe_api_base)
    client = _clients.get(cache_key)
    if client is None:
        base: BaseAddresses = {}
        if settings.stripe_api_base:
            base["api"] = settings.stripe_api_base.rstrip("/")
        client = stripe.StripeClient(
            key,
            base_addresses=base,
            http_client=stripe.HTTPXClient(timeout=30),
            max_network_retries=2,  # retried with the same Idempotency-Key
        )
        _clients[cache_key] = client
    return client
