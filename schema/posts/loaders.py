"""Dataloaders of posts: by id, an account's recent posts, a post's comments and their count."""

from __future__ import annotations

from typing import Any

from strawberry.dataloader import DataLoader

from domain.posts.models import Comment, Post
from domain.posts.service import posts
from schema.loading import grouped, loader


class PostLoaders:
    def __init__(self, tenant_schema: str | None, *, cache: bool = True) -> None:
        s = tenant_schema
        self.post_by_id = loader(s, posts.by_ids, cache=cache)
        self.recent_posts_by_account: DataLoader[tuple[int, Any], list[Post]] = loader(
            s, grouped(posts.recent_by_account), list, cache=cache
        )
        self.comments_by_post: DataLoader[tuple[int, Any], list[Comment]] = loader(
            s, grouped(posts.comments_by_post), list, cache=cache
        )
        self.comment_count_by_post = loader(s, posts.comment_counts, int, cache=cache)
