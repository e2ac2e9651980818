"""Outbound webhooks: endpoints, the fan-out of domain events into deliveries, and the
bookkeeping of each delivery attempt. Runs inside the caller's tenant transaction; never
commits. The HTTP sending itself is the `webhooks.deliver` job (jobs/webhooks.py).

Delivery rows are the source of truth. A delivery keeps one `message_id` and one body for all
its attempts (the `webhook-id` receivers deduplicate on); a worker claims a row for a bounded
time before sending, so a lost worker's delivery is picked up again by `webhooks.requeue_due`
once its claim lapses, under the same id.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from domain.audit import service as actions
from domain.audit.service import Actor, audit
from domain.collection.secrets import CredentialCipher, cipher_from_settings
from domain.errors import FieldError, NotFound, ValidationFailed
from domain.pagination import Page, newest_first
from domain.webhooks import rules
from domain.webhooks.models import WebhookDelivery, WebhookEndpoint
from tenants import outbox
from tenants.tx import TenantTx

DELIVER_JOB = "webhooks.deliver"


@dataclass(frozen=True)
class Claimed:
    """What a worker needs to send one attempt, read under the row's claim."""

    delivery_id: int
    attempt: int
    url: str
    secret: str
    message_id: str
    body: str


async def check_destination(url: str, *, allow_private: bool) -> None:
    """Refuse non-http(s) URLs, and hosts resolving to private addresses unless allowed
    (production refuses them: SSRF). Checked when an endpoint is saved and before every send,
    since DNS answers change."""
    problem = rules.check_url(url)
    if problem:
        raise ValidationFailed(problem)
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError as exc:
        raise ValidationFailed(FieldError("url", f"cannot resolve {host}")) from exc
    addresses = {str(info[4][0]) for info in infos}
    if not addresses or not all(rules.is_public_address(a) for a in addresses):
        raise ValidationFailed(FieldError("url", "must not point at a private address"))


class WebhookService:
    def __init__(self, cipher: CredentialCipher | None = None) -> None:
        self._cipher = cipher

    @property
    def cipher(self) -> CredentialCipher:
        if self._cipher is None:
            self._cipher = cipher_from_settings()
        return self._cipher

    # -- endpoints -------------------------------------------------------------------------

    async def create(
        self,
        *,
        url: str,
        events: Sequence[str],
        description: str,
        allow_private: bool,
        tenant_id: int,
        actor: Actor | None = None,
    ) -> tuple[WebhookEndpoint, str]:
        """A new endpoint and its signing secret (returned once; stored encrypted). Audited."""
        url = url.strip()
        chosen = await self._check(url, events, description, allow_private)
        secret = rules.new_secret()
        endpoint = await WebhookEndpoint.create(
            url=url,
            events=chosen,
            description=description.strip(),
            secret=self.cipher.encrypt(secret).encode(),
        )
        await _audit(actions.WEBHOOK_ENDPOINT_CREATED, endpoint.id, endpoint.url, tenant_id, actor)
        return endpoint, secret

    async def update(
        self,
        endpoint_id: int,
        *,
        allow_private: bool,
        tenant_id: int,
        actor: Actor | None = None,
        url: str | None = None,
        events: Sequence[str] | None = None,
        description: str | None = None,
        is_active: bool | None = None,
    ) -> WebhookEndpoint:
        """Change an endpoint (what is given); audited."""
        endpoint = await self._endpoint(endpoint_id)
        new_url = endpoint.url if url is None else url.strip()
        chosen = await self._check(
            new_url,
            endpoint.events if events is None else events,
            endpoint.description if description is None else description,
            allow_private,
        )
        endpoint.url, endpoint.events = new_url, chosen
        if description is not None:
            endpoint.description = description.strip()
        if is_active is not None:
            endpoint.is_active = is_active
        await endpoint.save()
        await _audit(actions.WEBHOOK_ENDPOINT_UPDATED, endpoint.id, endpoint.url, tenant_id, actor)
        return endpoint

    async def delete(
        self, endpoint_id: int, *, tenant_id: int, actor: Actor | None = None
    ) -> WebhookEndpoint:
        """Delete the endpoint and its delivery log; queued attempts find nothing to send.
        Audited."""
        endpoint = await self._endpoint(endpoint_id)
        await endpoint.delete()
        await _audit(actions.WEBHOOK_ENDPOINT_DELETED, endpoint_id, endpoint.url, tenant_id, actor)
        return endpoint

    async def list_endpoints(self) -> list[WebhookEndpoint]:
        return await WebhookEndpoint.all().order_by("id")

    async def endpoints_by_ids(self, ids: Sequence[int]) -> dict[int, WebhookEndpoint]:
        return {e.id: e for e in await WebhookEndpoint.filter(id__in=list(ids))}

    # -- deliveries ------------------------------------------------------------------------

    async def list_deliveries(
        self,
        *,
        endpoint_id: int | None = None,
        status: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Page[WebhookDelivery]:
        """The delivery log, newest first."""
        query = WebhookDelivery.all()
        if endpoint_id is not None:
            query = query.filter(endpoint_id=endpoint_id)
        if status:
            query = query.filter(status=status)
        return await newest_first(query, first, after, "delivery")

    async def deliveries_by_ids(self, ids: Sequence[int]) -> dict[int, WebhookDelivery]:
        return {d.id: d for d in await WebhookDelivery.filter(id__in=list(ids))}

    async def redeliver(self, delivery_id: int, schema: str) -> WebhookDelivery:
        """Send the same message (same webhook-id and body) again, now, whatever happened to
        it before; one more attempt beyond the automatic ones."""
        delivery = await WebhookDelivery.filter(id=delivery_id).select_for_update().first()
        if delivery is None:
            raise NotFound("WebhookDelivery", delivery_id)
        if delivery.status == "pending":
            raise ValidationFailed(FieldError("id", "this delivery is already queued"))
        delivery.status = "pending"
        delivery.next_attempt_at = datetime.now(UTC)
        delivery.claimed_until = None  # type: ignore[assignment]
        await delivery.save()
        outbox.enqueue(
            DELIVER_JOB,
            schema,
            delivery.id,
            suffix=f"manual{delivery.attempts}",
            high_priority=True,
        )
        return delivery

    # -- the fan-out point -----------------------------------------------------------------

    def fan_out(self, tx: TenantTx, internal_event: str, payload: dict[str, Any]) -> None:
        """Called by `tenants.outbox.publish` for every domain event (registered in
        domain/events.py): buffered per transaction and written, just before COMMIT, as one
        delivery per subscribed endpoint (so deliveries exist exactly when the change that
        caused them commits)."""
        buffer: list[tuple[str, dict[str, Any], datetime]] | None = tx.buffers.get("webhooks")
        if buffer is None:
            buffer = tx.buffers["webhooks"] = []
            events = buffer

            async def flush() -> None:
                await self._create_deliveries(tx, events)

            tx.on_before_commit(flush)
        buffer.append((rules.event_type(internal_event), payload, datetime.now(UTC)))

    async def _create_deliveries(
        self, tx: TenantTx, events: list[tuple[str, dict[str, Any], datetime]]
    ) -> None:
        if tx.schema is None or not events:
            return
        endpoints = await WebhookEndpoint.filter(is_active=True).only("id", "events")
        if not endpoints:
            return
        rows = [
            WebhookDelivery(
                endpoint_id=endpoint.id,
                event_type=event,
                message_id=rules.new_message_id(),
                payload=rules.message(event, data, at),
                next_attempt_at=at,
            )
            for event, data, at in events
            for endpoint in endpoints
            if event in (endpoint.events or ())
        ]
        if not rows:
            return
        await WebhookDelivery.bulk_create(rows, batch_size=500)
        ids: list[Any] = await WebhookDelivery.filter(
            message_id__in=[r.message_id for r in rows]
        ).values_list("id", flat=True)
        for delivery_id in ids:
            outbox.enqueue(DELIVER_JOB, tx.schema, int(delivery_id), suffix="a0")

    # -- attempts (the job) ----------------------------------------------------------------

    async def claim(self, delivery_id: int, *, hold: timedelta) -> Claimed | None:
        """Claim a due delivery for one attempt (None: not pending, not due, or another worker
        holds it). The attempt is counted now, so a worker dying mid-send still counts."""
        now = datetime.now(UTC)
        delivery = (
            await WebhookDelivery.filter(id=delivery_id)
            .select_for_update()
            .prefetch_related("endpoint")
            .first()
        )
        if delivery is None or delivery.status != "pending":
            return None
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
            return None
        if delivery.claimed_until is not None and delivery.claimed_until > now:
            return None
        if not delivery.endpoint.is_active:  # paused: stop here; redeliver after resuming
            delivery.status, delivery.next_attempt_at = "failed", None  # type: ignore[assignment]
            delivery.last_error = "endpoint paused"
            await delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
            return None
        delivery.claimed_until = now + hold
        delivery.attempts += 1
        delivery.last_attempt_at = now
        await delivery.save(update_fields=["claimed_until", "attempts", "last_attempt_at"])
        endpoint = delivery.endpoint
        return Claimed(
            delivery_id=delivery.id,
            attempt=delivery.attempts,
            url=endpoint.url,
            secret=self.cipher.decrypt(endpoint.secret),
            message_id=delivery.message_id,
            body=json.dumps(delivery.payload, separators=(",", ":")),
        )

    async def finish(
        self,
        claimed: Claimed,
        schema: str,
        *,
        response_code: int | None,
        error: str | None,
        max_attempts: int,
        base: float,
        cap: float,
        retry: bool = True,
    ) -> WebhookDelivery | None:
        """Record an attempt's outcome; schedule the next attempt with back-off, or give up
        after `max_attempts` (or at once when `retry` is off: a refused destination)."""
        delivery = await WebhookDelivery.filter(id=claimed.delivery_id).select_for_update().first()
        if delivery is None:  # the endpoint was deleted meanwhile
            return None
        delivery.response_code = response_code  # type: ignore[assignment]
        delivery.last_error = error[:2000] if error else None  # type: ignore[assignment]
        delivery.claimed_until = None  # type: ignore[assignment]
        if error is None:
            delivery.status, delivery.next_attempt_at = "succeeded", None  # type: ignore[assignment]
        elif not retry or delivery.attempts >= max_attempts:
            delivery.status, delivery.next_attempt_at = "failed", None  # type: ignore[assignment]
        else:
            delay = timedelta(seconds=rules.retry_delay(delivery.attempts, base, cap))
            delivery.next_attempt_at = datetime.now(UTC) + delay
            outbox.enqueue(
                DELIVER_JOB, schema, delivery.id, suffix=f"a{delivery.attempts}", defer_by=delay
            )
        await delivery.save()
        return delivery

    async def due_ids(self, now: datetime) -> list[tuple[int, int]]:
        """(id, attempts) of pending deliveries that are due and unclaimed (or whose claim
        lapsed): the ones whose job was lost."""
        rows = await WebhookDelivery.filter(status="pending", next_attempt_at__lte=now).values_list(
            "id", "attempts", "claimed_until"
        )
        return [(int(i), int(a)) for i, a, c in rows if c is None or c <= now]  # type: ignore[misc]

    async def _check(
        self, url: str, events: Sequence[str], description: str, allow_private: bool
    ) -> list[str]:
        chosen, errors = rules.check_events(events)
        problem = rules.check_url(url)
        if problem:
            errors.append(problem)
        if len(description) > rules.MAX_DESCRIPTION:
            errors.append(
                FieldError("description", f"longer than {rules.MAX_DESCRIPTION} characters")
            )
        if errors:
            raise ValidationFailed(errors)
        await check_destination(url, allow_private=allow_private)
        return chosen

    async def _endpoint(self, endpoint_id: int) -> WebhookEndpoint:
        endpoint = await WebhookEndpoint.filter(id=endpoint_id).select_for_update().first()
        if endpoint is None:
            raise NotFound("WebhookEndpoint", endpoint_id)
        return endpoint


async def _audit(
    action: str, endpoint_id: int, url: str, tenant_id: int, actor: Actor | None
) -> None:
    await audit.record(
        action,
        tenant_id=tenant_id,
        actor=actor,
        target=("WebhookEndpoint", endpoint_id),
        metadata={"url": url},
    )


webhooks = WebhookService()
