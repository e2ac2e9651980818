"""Keyset pagination shared by every list: opaque cursors, capped page sizes."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tortoise.queryset import QuerySet

from domain.errors import FieldError, ValidationFailed

T = TypeVar("T")
M = TypeVar("M", bound=Any)

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool


def check_first(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 0 or first > MAX_PAGE_SIZE:
        raise ValidationFailed(FieldError("first", f"must be between 0 and {MAX_PAGE_SIZE}"))
    return first


def encode_cursor(sort: str, value: object, ident: int) -> str:
    raw = json.dumps([sort, value, ident], separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[object, int]:
    """Return (sort value, id); a cursor from another sort order or garbage is a typed error."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        cursor_sort, value, ident = data
        if cursor_sort != sort or not isinstance(ident, int):
            raise ValueError
        return value, ident
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationFailed(FieldError("after", "invalid cursor for this list")) from exc


async def newest_first(
    query: QuerySet[M], first: int | None, after: str | None, kind: str
) -> Page[M]:
    """One page of `query` by descending id (the newest rows first): the keyset most lists
    use. `kind` names the list in its cursors, so a cursor of another list is refused."""
    limit = check_first(first)
    if after:
        _, ident = decode_cursor(after, kind)
        query = query.filter(id__lt=ident)
    rows = await query.order_by("-id").limit(limit + 1)
    items = rows[:limit]
    return Page(
        items,
        [encode_cursor(kind, r.id, r.id) for r in items],
        has_next_page=len(rows) > limit,
        has_previous_page=bool(after),
    )
