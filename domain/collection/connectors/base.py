"""What every platform connector speaks: the data it returns, the errors it raises, the protocol.

Connectors turn a platform's documented JSON into these plain dataclasses in ONE `_map_*`
function per platform and keep the platform item in `raw`. `PostData.to_import_row` turns a
collected post into the same `ImportRow` the CSV/JSONL import produces, so both paths share
one write path (`domain.posts.service.PostService.upsert_rows`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import httpx

from domain.collection.rules import HASHTAG_RE, MENTION_RE, ImportRow

T = TypeVar("T")


# --- errors --------------------------------------------------------------------------------


class ConnectorError(Exception):
    """Base of every typed failure a connector raises."""

    code = "CONNECTOR_ERROR"

    def __init__(self, platform: str, message: str) -> None:
        super().__init__(f"{platform}: {message}")
        self.platform = platform
        self.message = message


class CredentialBroken(ConnectorError):
    """The platform refused the credential (401/403, revoked or invalid token). Never retried:
    the job marks the connection broken and tells the tenant."""

    code = "CREDENTIAL_BROKEN"

    def __init__(self, platform: str, message: str, *, status: int | None = None) -> None:
        super().__init__(platform, message)
        self.status = status


class AccountUnavailable(ConnectorError):
    """The account is removed, private, suspended or not found; `reason` says which as far as
    the platform tells (`not_found`, `private`, `suspended`, `not_business`, ...)."""

    code = "ACCOUNT_UNAVAILABLE"

    def __init__(self, platform: str, reason: str, message: str = "") -> None:
        super().__init__(platform, message or reason)
        self.reason = reason


class QuotaExhausted(ConnectorError):
    """The rate-limit bucket (ours or the platform's) is empty: retry in `retry_after` seconds.
    The job reschedules itself instead of sleeping."""

    code = "QUOTA_EXHAUSTED"

    def __init__(self, platform: str, retry_after: float, message: str = "") -> None:
        super().__init__(platform, message or f"quota exhausted, retry in {retry_after:.0f}s")
        self.retry_after = max(0.0, float(retry_after))


class PlatformUnavailable(ConnectorError):
    """5xx, network errors or 429s that outlasted every retry attempt: a transient failure the
    job retries later from its cursor."""

    code = "PLATFORM_UNAVAILABLE"

    def __init__(
        self,
        platform: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(platform, message)
        self.status = status
        self.retry_after = retry_after  # the platform's Retry-After, when it sent one


class PlatformRequestFailed(ConnectorError):
    """Any other refusal (a 4xx the connector has no meaning for): a bug or a changed API, not
    retried."""

    code = "PLATFORM_REQUEST_FAILED"

    def __init__(self, platform: str, message: str, *, status: int | None = None) -> None:
        super().__init__(platform, message)
        self.status = status


# --- data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountRef:
    """What a collection job knows about an account from our database."""

    platform: str
    handle: str
    external_id: str | None = None


@dataclass(frozen=True)
class AccountData:
    """A platform profile, mapped to `InfluencerAccount`'s fields (+ a few more)."""

    platform: str
    external_id: str
    handle: str
    display_name: str = ""
    followers: int = 0
    verified: bool = False
    profile_url: str | None = None
    posts_count: int | None = None
    is_private: bool = False
    raw: dict[str, Any] = field(default_factory=dict)

    def ref(self) -> AccountRef:
        return AccountRef(self.platform, self.handle, self.external_id)


@dataclass(frozen=True)
class PostData:
    """A post, mapped to `Post`'s fields; `raw` is the platform item as received."""

    platform: str
    external_id: str
    handle: str
    published_at: datetime
    url: str = ""
    text: str = ""
    likes: int = 0
    comments: int = 0
    shares: int = 0
    views: int = 0
    hashtags: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()
    account_external_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def to_import_row(self, index: int) -> ImportRow:
        """The same row shape the file import writes, so both go through one upsert."""
        return ImportRow(
            index=index,
            platform=self.platform,
            handle=self.handle.lstrip("@").lower(),
            external_id=self.external_id,
            url=self.url[:1000],
            text=self.text,
            published_at=self.published_at,
            likes=self.likes,
            comments=self.comments,
            shares=self.shares,
            views=self.views,
            hashtags=self.hashtags,
            mentions=self.mentions,
            raw=self.raw,
        )


@dataclass(frozen=True)
class CommentData:
    """A comment, mapped to `Comment`'s fields."""

    platform: str
    external_id: str
    post_external_id: str
    author: str = ""
    text: str = ""
    likes: int = 0
    published_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemError:
    """A platform item that could not be mapped: skipped, reported, never fatal."""

    external_id: str | None
    message: str
    raw: Any = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a platform listing.

    `next_cursor` is opaque and resumable: store it with the page's rows in the same commit and
    pass it back to continue after a crash; `None` means the listing is finished. `units` is
    the quota the calls behind this page cost (YouTube units, requests elsewhere).
    """

    items: list[T]
    next_cursor: str | None
    errors: list[ItemError] = field(default_factory=list)
    units: int = 0

    @property
    def done(self) -> bool:
        return self.next_cursor is None


# --- protocol ------------------------------------------------------------------------------


@runtime_checkable
class Connector(Protocol):
    """A platform source. Every method may raise CredentialBroken, AccountUnavailable,
    QuotaExhausted, PlatformUnavailable or PlatformRequestFailed."""

    platform: str

    async def fetch_profile(self, handle: str) -> AccountData: ...

    async def fetch_posts(
        self, account: AccountRef, cursor: str | None = None, *, since: datetime | None = None
    ) -> Page[PostData]: ...

    async def fetch_comments(
        self, post: PostData, cursor: str | None = None
    ) -> Page[CommentData]: ...


# --- helpers shared by the mappers ----------------------------------------------------------


def encode_cursor(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a connector cursor") from exc
    if not isinstance(value, dict):
        raise ValueError("not a connector cursor")
    return value


def count(value: Any, name: str) -> int:
    """A platform count: int or numeric string (YouTube sends strings); absent is 0."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"{name} is not a number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise ValueError(f"{name} is not a number")
    if number < 0:
        raise ValueError(f"{name} must not be negative")
    return number


def required_id(item: Any, key: str = "id") -> str:
    if not isinstance(item, dict):
        raise ValueError("item is not an object")
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        raise ValueError(f"{key} is missing")
    text = str(value).strip()
    if len(text) > 100:
        raise ValueError(f"{key} is longer than 100 characters")
    return text


def iso_datetime(value: Any, name: str) -> datetime:
    """ISO 8601 (`Z` or offsets, Graph API's `+0000` too) to an aware datetime."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} is missing")
    text = value.strip().replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":  # +0000 -> +00:00
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{name} is not an ISO 8601 date-time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def epoch_datetime(value: Any, name: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} is not a Unix time")
    return datetime.fromtimestamp(value, UTC)


def error_object(response: httpx.Response, key: str = "error") -> dict[str, Any]:
    """The platform's error object from a response body, or {} when there is none."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get(key) if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


def tags_from(text: str, given: Any = None, *, mentions: bool = False) -> tuple[str, ...]:
    """Hashtags (or mentions) as a platform lists them, else taken from the text; lower case,
    without '#'/'@', deduplicated in order (the import's rule)."""
    if isinstance(given, list) and given:
        items = [str(v) for v in given if isinstance(v, str | int)]
    else:
        items = (MENTION_RE if mentions else HASHTAG_RE).findall(text)
    seen: dict[str, None] = {}
    for item in items:
        tag = item.strip().lstrip("@#").lower()
        if tag:
            seen.setdefault(tag[:100], None)
    return tuple(seen)


def map_items(
    items: Any, mapper: Callable[[Any], T], *, id_key: str = "id"
) -> tuple[list[T], list[ItemError]]:
    """Map every platform item; one that does not fit (missing id, wrong types) becomes an
    ItemError instead of failing the page."""
    if not isinstance(items, list):
        return [], ([ItemError(None, "the item list is not a list", items)] if items else [])
    mapped: list[T] = []
    errors: list[ItemError] = []
    for item in items:
        try:
            mapped.append(mapper(item))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            ident = item.get(id_key) if isinstance(item, dict) else None
            errors.append(
                ItemError(str(ident) if ident is not None else None, str(exc) or "bad item", item)
            )
    return mapped, errors
