"""Trend detection's pure functions on small hand-checked cases."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from domain.trends.clusters import cluster_texts, post_keywords
from domain.trends.forecast import forecast_series
from domain.trends.rules import (
    HOUR,
    TrendConfig,
    TrendPost,
    burst_stats,
    burst_stats_many,
    detect_trends,
    hourly_counts,
    influencer_contributions,
    trend_score,
    trend_status,
    windows,
)

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)


def test_hourly_counts_and_windows() -> None:
    start = datetime(2026, 11, 20, 0, tzinfo=UTC)
    times = [start, start + timedelta(minutes=59), start + timedelta(hours=2), start - HOUR]
    assert hourly_counts(times, start, 3).tolist() == [2, 0, 1]
    # windows are counted back from the end; the leading remainder is dropped
    assert windows([1, 2, 3, 4, 5, 6, 7], 3).tolist() == [9.0, 18.0]


def test_a_burst_is_found() -> None:
    counts = [2] * 60 + [2, 2, 2, 8, 10, 12]  # 12 per 6 h windows, then 36 in the last one
    s = burst_stats(counts, window=6)
    assert s.baseline_median == 12.0 and s.baseline_mad == 0.0
    # MAD is 0: the Poisson floor sqrt(12) is the scale
    assert s.scale == pytest.approx(math.sqrt(12))
    assert s.z == pytest.approx((36 - 12) / math.sqrt(12))
    assert (s.current, s.previous, s.velocity, s.acceleration) == (36, 12, 24, 24)
    assert trend_status(s) == "rising"  # an established topic growing fast


def test_a_flat_series_is_not_a_burst() -> None:
    s = burst_stats([3] * 336, window=6)
    assert s.z == 0.0 and s.velocity == 0.0
    assert trend_status(s) == "stable"
    noisy = burst_stats([2, 4, 3, 3, 1, 5] * 56, window=6)
    assert abs(noisy.z) < 1 and trend_status(noisy) == "stable"


def test_a_new_topic_bursting_is_emerging() -> None:
    s = burst_stats([0] * 330 + [0, 1, 2, 3, 4, 5], window=6)
    assert s.baseline_median == 0 and s.scale == 1.0 and s.z == 15.0
    assert trend_status(s) == "emerging"


def test_statuses_after_the_peak() -> None:
    base = [2] * 300  # 12 per window
    # grew, then the latest window is a bit lower than the peak: peaking
    peaking = burst_stats(base + [2] * 18 + [6] * 6 + [5] * 6, window=6)
    assert peaking.velocity < 0 and peaking.z >= 2
    assert trend_status(peaking) == "peaking"
    # still above baseline but well below the peak: declining
    falling = burst_stats(base + [2] * 18 + [8] * 6 + [4] * 6, window=6)
    assert falling.current < 0.75 * falling.peak and falling.z >= 2
    assert trend_status(falling) == "declining"
    # back at baseline, burst 12 h ago: declining; a burst older than 48 h: stable
    after = burst_stats(base + [8] * 6 + [2] * 12, window=6)
    assert after.z == 0 and trend_status(after) == "declining"
    old = burst_stats(base + [8] * 6 + [2] * 60, window=6)
    assert trend_status(old) == "stable"
    # one post now and then is never a burst (min_volume)
    assert trend_status(burst_stats([0] * 330 + [0, 0, 0, 0, 0, 2])) == "stable"


def test_score_breakdown_sums_to_the_score() -> None:
    s = burst_stats([0] * 330 + [0, 1, 2, 3, 4, 5], window=6)
    score, parts = trend_score(s, 15, 0.5, 39.0, 19.0, 0.2)
    assert [p.name for p in parts] == ["burst", "volume", "recency", "engagement", "sentiment"]
    assert math.fsum(p.contribution for p in parts) == pytest.approx(score)
    assert sum(p.weight for p in parts) == pytest.approx(1.0)
    assert parts[0].value == 100.0  # z = 15 >= 6
    assert parts[3].value == pytest.approx(50 + 50 * math.tanh(1.0))  # twice as engaging
    assert parts[4].value == pytest.approx(60.0)
    # unknown engagement and sentiment are neutral (50), not zero
    _, unknown = trend_score(s, 15, 0.5, None, None, None)
    assert unknown[3].value == 50.0 and unknown[4].value == 50.0


def test_forecast_interval_contains_the_continuation_of_a_linear_series() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    wiggle = [0.7 if t % 2 else -0.7 for t in range(21)]
    series = [5 + 2 * t + wiggle[t] for t in range(14)]
    f = forecast_series(series, start, timedelta(days=1), 7, level=0.9, label="7d")
    assert f.horizon == "7d" and f.step_hours == 24 and len(f.points) == 7
    assert f.model == "ets-add"  # the linear trend wins on AICc
    for h, point in enumerate(f.points):
        truth = 5 + 2 * (14 + h)
        assert point.low <= truth <= point.high, (h, point)
        assert point.low <= point.value <= point.high
        assert point.t == start + timedelta(days=h)
    widths = [p.high - p.low for p in f.points]
    assert widths == sorted(widths)  # the interval widens with the horizon


def test_forecast_of_a_flat_or_short_series_is_flat_and_never_negative() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    flat = forecast_series([0] * 48, start, HOUR, 24)
    assert flat.model == "flat" and all(p.value == p.low == p.high == 0 for p in flat.points)
    short = forecast_series([1, 0, 2], start, HOUR, 3)
    assert short.model == "flat" and all(p.low >= 0 for p in short.points)
    assert short.points[0].value == pytest.approx(1.0)


def test_clustering_separates_two_obvious_groups() -> None:
    football = [f"football match goal striker stadium fans {i}" for i in range(8)]
    baking = [f"baking sourdough bread oven flour recipe {i}" for i in range(8)]
    texts = [t for pair in zip(football, baking, strict=True) for t in pair]
    clusters = cluster_texts(texts, n_clusters=2)
    assert len(clusters) == 2
    groups = sorted(sorted(c.members) for c in clusters)
    assert groups == [list(range(0, 16, 2)), list(range(1, 16, 2))]
    labels = {c.key: set(c.terms) for c in clusters}
    assert any(
        terms <= {"football", "match", "goal", "striker", "stadium", "fans"}
        for terms in labels.values()
    )
    assert any(
        terms <= {"baking", "sourdough", "bread", "oven", "flour", "recipe"}
        for terms in labels.values()
    )


def test_post_keywords_are_each_posts_top_terms() -> None:
    kws = post_keywords(["The marathon in Lisbon", "Lisbon marathon runners", "the and of"])
    assert set(kws[0]) == {"marathon", "lisbon"} and set(kws[1]) == {
        "lisbon",
        "marathon",
        "runners",
    }
    assert kws[1][0] == "runners"  # the rarest term weighs most
    assert kws[2] == ()


def test_influencer_contributions() -> None:
    t = NOW
    posts = [
        TrendPost(1, 10, "x", t, engagement=90),
        TrendPost(2, 10, "x", t, engagement=0),
        TrendPost(3, 20, "x", t, engagement=10),
        TrendPost(4, 30, "x", t, engagement=0),
    ]
    ranked = influencer_contributions(posts)
    assert [c.influencer_id for c in ranked] == [10, 20, 30]
    assert ranked[0].contribution == pytest.approx((0.5 + 0.9) / 2)
    assert math.fsum(c.contribution for c in ranked) == pytest.approx(1.0)


def _posts() -> list[TrendPost]:
    posts: list[TrendPost] = []
    pid = 0
    # background: one #daily post every 4 hours for 13 days (flat), on instagram
    for h in range(0, 13 * 24, 4):
        pid += 1
        posts.append(
            TrendPost(
                pid,
                1,
                "instagram",
                NOW - timedelta(days=13) + timedelta(hours=h),
                "my daily coffee",
                ("daily",),
                None,
                10,
                None,
            )
        )
    # burst: 30 #launch posts in the last 5 hours, two influencers, two platforms
    for i in range(30):
        pid += 1
        posts.append(
            TrendPost(
                pid,
                2 if i % 3 else 3,
                "tiktok" if i % 2 else "instagram",
                NOW - timedelta(minutes=10 * i),
                "the new phone launch is here",
                ("launch",),
                ("phone", "launch") if i % 5 == 0 else None,
                50,
                0.5 if i % 2 else None,
            )
        )
    return posts


def test_detect_trends_finds_the_burst_and_not_the_background() -> None:
    results = detect_trends(_posts(), NOW, TrendConfig(forecast_top_n=3))
    by_key = {(r.kind, r.key, r.platform): r for r in results}
    launch = by_key[("hashtag", "launch", "all")]
    assert launch.status == "emerging" and launch.volume == 30
    assert launch.stats.z >= 3 and launch.label == "#launch"
    assert launch.sentiment == pytest.approx(0.5) and launch.sentiment_posts == 15
    assert {r.platform for r in results if r.key == "launch" and r.kind == "hashtag"} == {
        "all",
        "instagram",
        "tiktok",
    }
    assert [i.influencer_id for i in launch.influencers] == [2, 3]
    assert sum(launch.series) == 30 and len(launch.series) == 7 * 24
    assert ("hashtag", "daily", "all") not in by_key  # stable and not tracked: not reported
    # keywords computed where the post has none, and stored ones used
    assert by_key[("keyword", "phone", "all")].status == "emerging"
    # results are sorted by score; the best non-stable ones carry both forecasts
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert results[0].status != "stable"
    assert [f.horizon for f in results[0].forecasts] == ["24h", "7d"]
    assert all(not r.forecasts for r in results if r.status == "stable")
    assert np.isfinite([p.high for f in launch.forecasts for p in f.points]).all()


def test_detect_trends_reports_tracked_stable_topics() -> None:
    tracked = {("hashtag", "daily", "all"), ("hashtag", "gone", "all")}
    results = detect_trends(_posts(), NOW, TrendConfig(forecast_top_n=0), tracked=tracked)
    daily = [r for r in results if r.key == "daily" and r.platform == "all"]
    assert [r.status for r in daily] == ["stable"] and daily[0].stats.z <= 1
    assert not daily[0].forecasts


def test_burst_stats_many_matches_one_by_one() -> None:
    rng = np.random.default_rng(3)
    matrix = rng.poisson(2, size=(5, 100))
    many = burst_stats_many(matrix, 6, 8)
    assert many == [burst_stats(row, 6, 8) for row in matrix]


def test_detect_trends_of_nothing() -> None:
    assert detect_trends([], NOW) == []
