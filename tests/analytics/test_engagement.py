from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.analytics.engagement import (
    FollowerSnapshot,
    PostStats,
    engagement_rates,
    follower_growth,
    growth_windows,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_engagement_rate_by_followers_and_by_views() -> None:
    posts = [
        PostStats(likes=80, comments=15, shares=5, views=1000),  # 100 interactions
        PostStats(likes=250, comments=40, shares=10, views=None),  # 300, no views
        PostStats(likes=10, comments=0, shares=0, views=0),  # 10, views 0: left out
    ]
    rates = engagement_rates(posts, followers=1000)
    # ((100 + 300 + 10) / 3) / 1000
    assert rates.by_followers == pytest.approx(410 / 3 / 1000)
    assert rates.by_views == pytest.approx(100 / 1000)
    assert (rates.posts, rates.posts_with_views, rates.followers) == (3, 1, 1000)


def test_engagement_rate_without_posts_or_followers() -> None:
    assert engagement_rates([], 1000).by_followers is None
    assert engagement_rates([PostStats(1, 1)], 0).by_followers is None
    assert engagement_rates([PostStats(1, 1)], 10).by_views is None


def daily(values: list[int]) -> list[FollowerSnapshot]:
    return [FollowerSnapshot(T0 + timedelta(days=i), v) for i, v in enumerate(values)]


def test_growth_over_windows() -> None:
    snapshots = daily([1000 + 10 * i for i in range(31)])  # 31 days: day 0 .. day 30
    growth = growth_windows(list(reversed(snapshots)))  # order does not matter
    g7, g30 = growth[7], growth[30]
    assert g7 is not None and g30 is not None
    assert (g7.start_followers, g7.end_followers, g7.absolute) == (1230, 1300, 70)
    assert g7.relative == pytest.approx(70 / 1230)
    assert (g30.start_followers, g30.absolute) == (1000, 300)
    assert g30.relative == pytest.approx(0.3)
    assert growth[90] is None  # not enough history


def test_growth_none_with_too_little_history() -> None:
    assert follower_growth([], 7) is None
    assert follower_growth(daily([100]), 7) is None
    assert follower_growth(daily([100] * 7), 7) is None  # day 0 .. day 6: 6 days of history
    assert follower_growth(daily([100] * 8), 7) is not None


def test_growth_with_gaps_uses_latest_snapshot_before_the_window() -> None:
    snapshots = [
        FollowerSnapshot(T0, 500),
        FollowerSnapshot(T0 + timedelta(days=5), 600),
        FollowerSnapshot(T0 + timedelta(days=20), 900),
    ]
    growth = follower_growth(snapshots, 7)
    assert growth is not None
    assert (growth.start_at, growth.start_followers, growth.absolute) == (snapshots[1].at, 600, 300)
    # `now` before the last snapshot ignores it
    assert follower_growth(snapshots, 7, now=T0 + timedelta(days=10)) is None
    earlier = follower_growth(snapshots, 5, now=T0 + timedelta(days=10))
    assert earlier is not None and earlier.absolute == 100


def test_relative_growth_none_from_zero() -> None:
    growth = follower_growth(daily([0] * 7 + [50]), 7)
    assert growth is not None and growth.absolute == 50 and growth.relative is None
