"""ARQ jobs of outbound webhooks: send one delivery attempt; re-enqueue lost ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from standardwebhooks.webhooks import Webhook

from core.runtime import runtime
from core.settings import get_settings
from domain.errors import ValidationFailed
from domain.webhooks.service import DELIVER_JOB, check_destination, webhooks
from jobs.registry import job
from tenants import outbox
from tenants.registry import list_tenant_schemas
from tenants.tx import tenant_tx

log = structlog.get_logger(__name__)

# A claim outlives the request's timeout by this much before the requeue cron retries it.
CLAIM_MARGIN = timedelta(seconds=30)
USER_AGENT = "Trendscope-Webhooks/1.0"


def signed_headers(secret: str, message_id: str, at: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt (signature over id.timestamp.body)."""
    signature = Webhook(secret).sign(msg_id=message_id, timestamp=at, data=body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


@job(DELIVER_JOB, max_tries=3, timeout=120)  # retries are the delivery row's own
async def deliver(ctx: dict[str, Any], tenant_schema: str, delivery_id: int) -> str:
    """`webhooks.deliver`: one attempt of one delivery, if it is still due and unclaimed."""
    settings = get_settings()
    async with tenant_tx(tenant_schema):
        claimed = await webhooks.claim(
            delivery_id, hold=timedelta(seconds=settings.webhook_timeout_seconds) + CLAIM_MARGIN
        )
    if claimed is None:
        return "nothing to do"
    code: int | None = None
    error: str | None = None
    retry = True
    try:
        await check_destination(claimed.url, allow_private=settings.webhook_private_urls_allowed)
        client = runtime.http
        assert client is not None
        response = await client.post(
            claimed.url,
            content=claimed.body.encode(),
            headers=signed_headers(
                claimed.secret, claimed.message_id, datetime.now(UTC), claimed.body
            ),
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
        )
        code = response.status_code
        if not 200 <= code < 300:
            error = f"HTTP {code}"
    except ValidationFailed as exc:  # the destination became a private address: never send
        error, retry = exc.message, False
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    async with tenant_tx(tenant_schema):
        row = await webhooks.finish(
            claimed,
            tenant_schema,
            response_code=code,
            error=error,
            max_attempts=settings.webhook_max_attempts,
            base=settings.webhook_retry_base_seconds,
            cap=settings.webhook_retry_max_seconds,
            retry=retry,
        )
    status = row.status if row else "gone"
    log.info(
        "webhook_attempt",
        schema=tenant_schema,
        delivery=delivery_id,
        attempt=claimed.attempt,
        code=code,
        status=status,
    )
    return f"attempt {claimed.attempt}: {status}"


async def requeue_due(ctx: dict[str, Any]) -> int:
    """`webhooks.requeue_due` (cron, every minute): enqueue again every pending delivery that
    is due and unclaimed, i.e. whose job was lost with Redis or with a killed worker. The job
    id carries the minute, so a job still queued is not doubled within it; a duplicate job
    finds the row claimed or done and does nothing."""
    now = datetime.now(UTC)
    count = 0
    for schema in await list_tenant_schemas():
        async with tenant_tx(schema):
            for delivery_id, attempts in await webhooks.due_ids(now):
                outbox.enqueue(
                    DELIVER_JOB,
                    schema,
                    delivery_id,
                    suffix=f"requeue{attempts}-{int(now.timestamp()) // 60}",
                )
                count += 1
    return count
