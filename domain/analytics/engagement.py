"""Engagement rates and follower growth (pure, deterministic). Formulas: docs/analytics.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

GROWTH_WINDOWS_DAYS: tuple[int, ...] = (7, 30, 90)


@dataclass(frozen=True)
class PostStats:
    likes: int
    comments: int
    shares: int = 0
    views: int | None = None  # None where the platform does not report views

    @property
    def interactions(self) -> int:
        return self.likes + self.comments + self.shares


@dataclass(frozen=True)
class FollowerSnapshot:
    at: datetime
    followers: int


@dataclass(frozen=True)
class EngagementRates:
    by_followers: float | None  # mean over posts of interactions / followers; None: no posts
    by_views: float | None  # mean over posts with views > 0 of interactions / views
    posts: int  # posts given
    posts_with_views: int
    followers: int


@dataclass(frozen=True)
class Growth:
    days: int
    start_at: datetime
    end_at: datetime
    start_followers: int
    end_followers: int
    absolute: int  # end - start
    relative: float | None  # absolute / start; None when start is 0


def post_engagement_rate(post: PostStats, followers: int) -> float | None:
    """(likes + comments + shares) / followers for one post; None when followers <= 0."""
    return post.interactions / followers if followers > 0 else None


def engagement_rates(posts: Sequence[PostStats], followers: int) -> EngagementRates:
    """Mean per-post engagement rate by followers and by views."""
    by_followers: float | None = None
    if posts and followers > 0:
        by_followers = sum(p.interactions for p in posts) / len(posts) / followers
    view_rates = [p.interactions / p.views for p in posts if p.views is not None and p.views > 0]
    by_views = sum(view_rates) / len(view_rates) if view_rates else None
    return EngagementRates(
        by_followers=by_followers,
        by_views=by_views,
        posts=len(posts),
        posts_with_views=len(view_rates),
        followers=followers,
    )


def follower_growth(
    snapshots: Sequence[FollowerSnapshot], days: int, now: datetime | None = None
) -> Growth | None:
    """Followers gained over the last `days` days.

    End: the latest snapshot at or before `now` (default: the latest snapshot). Start: the latest
    snapshot at or before end - `days`. None when there is no such start (too little history).
    """
    ordered = sorted(snapshots, key=lambda s: s.at)
    if now is not None:
        ordered = [s for s in ordered if s.at <= now]
    if not ordered:
        return None
    end = ordered[-1]
    cutoff = end.at - timedelta(days=days)
    starts = [s for s in ordered if s.at <= cutoff]
    if not starts:
        return None
    start = starts[-1]
    absolute = end.followers - start.followers
    return Growth(
        days=days,
        start_at=start.at,
        end_at=end.at,
        start_followers=start.followers,
        end_followers=end.followers,
        absolute=absolute,
        relative=absolute / start.followers if start.followers > 0 else None,
    )


def growth_windows(
    snapshots: Sequence[FollowerSnapshot],
    now: datetime | None = None,
    windows: Sequence[int] = GROWTH_WINDOWS_DAYS,
) -> dict[int, Growth | None]:
    """`follower_growth` for each window (7, 30 and 90 days by default)."""
    return {days: follower_growth(snapshots, days, now) for days in windows}


def pooled_engagement_rates(accounts: Sequence[tuple[Sequence[PostStats], int]]) -> EngagementRates:
    """Engagement rates of an influencer with several accounts: every post's rate is taken
    against its own account's followers (a YouTube post is not divided by Instagram
    followers), then averaged over all posts. `accounts` is (posts, followers) per account;
    `followers` of the result is their sum."""
    follower_rates = [
        p.interactions / followers for posts, followers in accounts if followers > 0 for p in posts
    ]
    view_rates = [
        p.interactions / p.views
        for posts, _ in accounts
        for p in posts
        if p.views is not None and p.views > 0
    ]
    return EngagementRates(
        by_followers=sum(follower_rates) / len(follower_rates) if follower_rates else None,
        by_views=sum(view_rates) / len(view_rates) if view_rates else None,
        posts=sum(len(posts) for posts, _ in accounts),
        posts_with_views=len(view_rates),
        followers=sum(followers for _, followers in accounts),
    )


def combined_growth(per_account: Sequence[Growth | None], days: int) -> Growth | None:
    """Growth of an influencer over `days` from its accounts' growths over the same window:
    absolute gains and start/end followers summed over the accounts whose growth is known,
    relative = summed gain / summed start; the span is the union of theirs. None when no
    account has enough history."""
    known = [g for g in per_account if g is not None]
    if not known:
        return None
    start = sum(g.start_followers for g in known)
    absolute = sum(g.absolute for g in known)
    return Growth(
        days=days,
        start_at=min(g.start_at for g in known),
        end_at=max(g.end_at for g in known),
        start_followers=start,
        end_followers=sum(g.end_followers for g in known),
        absolute=absolute,
        relative=absolute / start if start > 0 else None,
    )
