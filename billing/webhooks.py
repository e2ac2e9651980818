"""POST /webhooks/stripe: verify the signature on the raw body, store the event once, 200.

The handling happens in the `billing.handle_event` ARQ job (billing/service.py), so Stripe
gets its answer fast and a failing handler is retried by us, not by Stripe. A bad signature,
a stale timestamp (beyond `stripe_webhook_tolerance_seconds`, 300 by default) or a body that
is not an event is answered 400 and nothing is stored.
"""

from __future__ import annotations

import json

import stripe
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from billing.service import billing
from core.settings import get_settings

log = structlog.get_logger(__name__)


async def stripe_webhook(request: Request) -> Response:
    settings = get_settings()
    if not settings.stripe_webhook_secret:
        return JSONResponse({"error": "Stripe webhooks are not configured"}, status_code=404)
    payload = await request.body()  # the raw bytes: the signature covers them exactly
    try:
        stripe.Webhook.construct_event(
            payload,
            request.headers.get("stripe-signature"),
            settings.stripe_webhook_secret,
            tolerance=settings.stripe_webhook_tolerance_seconds,
        )
        event = json.loads(payload)
    except (ValueError, stripe.SignatureVerificationError) as exc:
        log.warning("stripe_webhook_refused", reason=type(exc).__name__)
        return JSONResponse({"error": "invalid payload or signature"}, status_code=400)
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        return JSONResponse({"error": "not an event"}, status_code=400)
    stored = await billing.receive_event(event)
    log.info("stripe_webhook", event_id=event["id"], type=event.get("type"), new=stored)
    return JSONResponse({"received": True, "duplicate": not stored})
