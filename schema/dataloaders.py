"""Per-request dataloaders: every relation is batched, one statement per relation per tick.

Each batch function opens `tenant_tx(schema)`: inside a mutation that re-uses the request's
transaction; in a query or a subscription (which hold none, api/graphql/transaction.py) it
is a short transaction of its own, so no connection sits idle in a transaction while GraphQL
builds the result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from domain.analytics.models import InfluencerScore
from domain.analytics.service import analytics
from domain.collection.models import FollowerSnapshot
from domain.collection.service import collection
from domain.influencers.service import influencers
from domain.insights.service import insights
from domain.posts.models import Comment, Post
from domain.posts.service import posts
from domain.trends.models import TrendPoint
from domain.trends.service import trends
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


def _loader(
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


def _grouped(
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


class Loaders:
    def __init__(self, tenant_schema: str | None, *, cache: bool = True) -> None:
        s = tenant_schema
        self.influencer_by_id = _loader(s, influencers.by_ids, cache=cache)
        self.accounts_by_influencer = _loader(
            s, influencers.accounts_by_influencer, list, cache=cache
        )
        self.account_by_id = _loader(s, influencers.accounts_by_ids, cache=cache)
        self.post_by_id = _loader(s, posts.by_ids, cache=cache)
        self.recent_posts_by_account: DataLoader[tuple[int, Any], list[Post]] = _loader(
            s, _grouped(posts.recent_by_account), list, cache=cache
        )
        self.comments_by_post: DataLoader[tuple[int, Any], list[Comment]] = _loader(
            s, _grouped(posts.comments_by_post), list, cache=cache
        )
        self.comment_count_by_post = _loader(s, posts.comment_counts, int, cache=cache)
        self.task_by_id = _loader(s, collection.by_ids, cache=cache)
        self.follower_history: DataLoader[tuple[int, Any], list[FollowerSnapshot]] = _loader(
            s, _grouped(influencers.follower_history), list, cache=cache
        )
        self.latest_score = _loader(s, analytics.latest_scores, cache=cache)
        self.score_history: DataLoader[tuple[int, Any], list[InfluencerScore]] = _loader(
            s, _grouped(analytics.score_history), list, cache=cache
        )
        # trends (schema/trends): rows, hourly points since a time, driving influencers
        self.trend_by_id = _loader(s, trends.by_ids, cache=cache)
        self.alert_rule_by_id = _loader(s, insights.rules_by_ids, cache=cache)
        self.trend_points: DataLoader[tuple[int, Any], list[TrendPoint]] = _loader(
            s, _grouped(trends.points_by_trend), list, cache=cache
        )
        self.trend_influencers = _loader(s, trends.influencers_by_trend, list, cache=cache)
