"""What every context's dataloaders (schema/<ctx>/loaders.py) and resolvers read through.

Dataloaders batch every relation: one statement per relation per tick. Each batch function
(`loader`) opens `tenant_tx(schema)`: inside a mutation that re-uses the request's
transaction; in a query or a subscription (which hold none, see TenantTransaction) it is a
short transaction of its own, so no connection sits idle in a transaction while GraphQL
builds the result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from tenants.tx import TenantTx, tenant_tx

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
N = TypeVar("N")


def tenant_scope(schema: str | None) -> AbstractAsyncContextManager[TenantTx]:
    """The transaction for a resolver's own reads: `tenant_tx(schema)` (joined when the
    request holds one, in a mutation; short and its own in a query)."""
    if schema is None:
        raise PermissionError("no tenant bound to this request")
    return tenant_tx(schema)


async def tenant_nodes(
    schema: str | None,
    node_ids: Iterable[str],
    by_ids: Callable[[list[int]], Awaitable[Mapping[int, V]]],
    from_model: Callable[[V], N],
) -> list[N | None]:
    """A Relay `resolve_nodes` over tenant rows: `by_ids` in the tenant's scope, the nodes in
    the order asked, None for an id the tenant has no row for."""
    ids = [int(i) for i in node_ids]
    async with tenant_scope(schema):
        found = await by_ids(ids)
    return [from_model(found[i]) if i in found else None for i in ids]


def loader(
    schema: str | None,
    fetch: Callable[[list[K]], Awaitable[dict[K, V]]],
    default: Callable[[], Any] = lambda: None,
    cache: bool = True,
) -> DataLoader[K, V]:
    async def load(keys: Sequence[K]) -> list[V]:
        async with tenant_scope(schema):
            found = await fetch(list(keys))
        return [found.get(k, default()) for k in keys]

    return DataLoader(load_fn=load, cache=cache)


def grouped(
    fetch: Callable[[list[int], Any], Awaitable[dict[int, list[V]]]],
) -> Callable[[list[tuple[int, Any]]], Awaitable[dict[tuple[int, Any], list[V]]]]:
    """Keys are (parent id, argument), e.g. a limit or a since; one query per distinct
    argument, so a page of parents asking the same thing is still one statement."""

    async def run(keys: list[tuple[int, Any]]) -> dict[tuple[int, Any], list[V]]:
        by_arg: dict[Any, list[int]] = {}
        for parent, arg in keys:
            by_arg.setdefault(arg, []).append(parent)
        out: dict[tuple[int, Any], list[V]] = {}
        for arg, parents in by_arg.items():
            for parent, items in (await fetch(parents, arg)).items():
                out[(parent, arg)] = items
        return out

    return run
