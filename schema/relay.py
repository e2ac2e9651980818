"""Relay helpers: global ids and connections built from domain pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import strawberry
from strawberry import relay

from domain.errors import FieldError, ValidationFailed
from domain.pagination import Page

N = TypeVar("N", bound=relay.Node)
M = TypeVar("M")


def decode_id(gid: relay.GlobalID | strawberry.ID | str, type_name: str, field: str = "id") -> int:
    """The database id inside a global id of the given type, or a typed error."""
    try:
        parsed = gid if isinstance(gid, relay.GlobalID) else relay.GlobalID.from_id(str(gid))
        if parsed.type_name != type_name:
            raise ValueError
        return int(parsed.node_id)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(FieldError(field, f"not a {type_name} id")) from exc


def build_connection(
    connection_cls: type[relay.Connection[N]], page: Page[M], convert: Callable[[M], N]
) -> relay.Connection[N]:
    edges = [
        relay.Edge(cursor=cursor, node=convert(item))
        for item, cursor in zip(page.items, page.cursors, strict=True)
    ]
    return connection_cls(
        edges=edges,
        page_info=relay.PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
    )
