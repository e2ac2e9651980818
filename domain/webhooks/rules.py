"""Pure rules of outbound webhooks: event names, URL checks, back-off, message format."""

from __future__ import annotations

import base64
import ipaddress
import secrets
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

from domain.errors import FieldError

# The events a tenant can subscribe an endpoint to. Domain events (`domain/events.py` `emit`,
# internal names like `post_added`) become these names by `event_type()`; events of other
# contexts (trends, alerts, scores) flow through the same fan-out once they are emitted.
EVENT_TYPES: dict[str, str] = {
    "post.added": "A post was stored (import or collection): {id, influencer_id}.",
    "collection_task.updated": "A collection task progressed or finished: {id, status, ...}.",
    "platform_connection.broken": "A platform refused the tenant's credential: "
    "{id, platform, reason}.",
    "trend.updated": "A trend was detected or changed.",
    "alert.triggered": "An alert's condition was met.",
    "score.updated": "An influencer's score was recomputed.",
    "insight.created": "A daily digest (or another insight) was written.",
}

MAX_URL_LENGTH = 2048
MAX_DESCRIPTION = 500
SECRET_BYTES = 24  # whsec_ + base64 of 24 random bytes (the standard asks for 24 to 64)


def event_type(internal: str) -> str:
    """`post_added` -> `post.added`, `collection_task_updated` -> `collection_task.updated`."""
    head, _, verb = internal.rpartition("_")
    return f"{head}.{verb}" if head else internal


def check_events(events: Iterable[str]) -> tuple[list[str], list[FieldError]]:
    chosen = list(dict.fromkeys(e.strip() for e in events))
    errors = [FieldError("events", f"unknown event {e!r}") for e in chosen if e not in EVENT_TYPES]
    if not chosen:
        errors.append(FieldError("events", "name at least one event"))
    return chosen, errors


def check_url(url: str) -> FieldError | None:
    """http(s) with a host, no credentials in it, of sane length. Whether the host may be a
    private address is checked separately (`is_public_address`), at creation and at send."""
    if len(url) > MAX_URL_LENGTH:
        return FieldError("url", f"longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return FieldError("url", "not a valid URL")
    if parts.scheme not in ("http", "https"):
        return FieldError("url", "must be an http or https URL")
    if not parts.hostname:
        return FieldError("url", "must name a host")
    if parts.username or parts.password:
        return FieldError("url", "must not carry credentials")
    return None


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified addresses
    (IPv4-mapped IPv6 included): the ones a webhook must not reach in production."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: base, 2*base, 4*base ... cap."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(16)


# Database ids in event payloads are sent as the API's global ids (usable with `node(id:)`).
GLOBAL_ID_FIELDS: dict[str, dict[str, str]] = {
    "post.added": {"id": "Post", "influencer_id": "Influencer"},
    "collection_task.updated": {"id": "CollectionTask"},
    "platform_connection.broken": {"id": "PlatformConnection"},
}


def global_id(type_name: str, ident: object) -> str:
    return base64.b64encode(f"{type_name}:{ident}".encode()).decode()


def message(event: str, data: dict[str, object], at: datetime) -> dict[str, object]:
    """The body: the Standard Webhooks payload shape {type, timestamp, data}."""
    ids = GLOBAL_ID_FIELDS.get(event, {})
    shown = {k: global_id(ids[k], v) if k in ids and v is not None else v for k, v in data.items()}
    return {"type": event, "timestamp": at.isoformat().replace("+00:00", "Z"), "data": shown}
