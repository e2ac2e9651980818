"""Data retention: a tenant keeps posts, comments and follower snapshots for its plan's
`retention_days` (tenants/plans.py); older rows are deleted by the nightly
`billing.apply_retention` job (jobs/billing.py), in batches, each batch its own short
transaction, so a large backlog never holds locks or a long transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.models import Model

from domain.collection.models import FollowerSnapshot
from domain.posts.models import Comment, Post
from tenants.tx import tenant_tx


@dataclass(frozen=True)
class Purged:
    posts: int = 0
    comments: int = 0
    snapshots: int = 0

    @property
    def total(self) -> int:
        return self.posts + self.comments + self.snapshots


async def _delete_batches(
    schema: str, model: type[Model], column: str, cutoff: datetime, batch_size: int
) -> int:
    deleted = 0
    while True:
        async with tenant_tx(schema):
            ids = (
                await model.filter(**{f"{column}__lt": cutoff})
                .order_by("id")
                .limit(batch_size)
                .values_list("id", flat=True)
            )
            if ids:
                await model.filter(id__in=list(ids)).delete()
        deleted += len(ids)
        if len(ids) < batch_size:
            return deleted


async def purge_older_than(
    schema: str, retention_days: int, now: datetime, batch_size: int = 1000
) -> Purged:
    """Delete the tenant's posts (their comments go with them), comments and follower
    snapshots older than `retention_days` before `now`, `batch_size` rows per transaction."""
    cutoff = now - timedelta(days=retention_days)
    posts = await _delete_batches(schema, Post, "published_at", cutoff, batch_size)
    comments = await _delete_batches(schema, Comment, "published_at", cutoff, batch_size)
    snapshots = await _delete_batches(schema, FollowerSnapshot, "taken_at", cutoff, batch_size)
    return Purged(posts=posts, comments=comments, snapshots=snapshots)
