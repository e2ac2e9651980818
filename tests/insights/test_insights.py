"""Anomalies, best posting times, digest and alert rules on small hand-checked cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.analytics.engagement import FollowerSnapshot
from domain.insights.alerts import (
    ARMED,
    FIRED,
    RuleSpec,
    check_rule,
    metric_value,
    next_state,
    observe,
)
from domain.insights.digest import build_digest, change_pct
from domain.insights.rules import (
    PostPoint,
    best_posting_times,
    detect_anomalies,
    engagement_anomalies,
    sentiment_turns,
    viral_posts,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def post(
    pid: int,
    days_ago: float,
    interactions: int,
    *,
    influencer: int = 1,
    account: int | None = None,
    platform: str = "instagram",
    followers: int = 1000,
    sentiment: float | None = None,
    at: datetime | None = None,
) -> PostPoint:
    return PostPoint(
        post_id=pid,
        influencer_id=influencer,
        account_id=account if account is not None else influencer,
        platform=platform,
        published_at=at or NOW - timedelta(days=days_ago),
        interactions=interactions,
        followers=followers,
        sentiment_score=sentiment,
    )


def history(values: list[int], start_days_ago: float = 30, **kw: object) -> list[PostPoint]:
    """One post a day going back from `start_days_ago`, ids 1.."""
    return [post(i + 1, start_days_ago - i, v, **kw) for i, v in enumerate(values)]  # type: ignore[arg-type]


# -- engagement spikes and drops -----------------------------------------------------------------


def test_flat_engagement_is_no_anomaly() -> None:
    posts = history([100, 104, 98, 101, 99, 102, 97, 100, 103, 100], start_days_ago=14)
    posts += [post(100 + i, 3 - i, v) for i, v in enumerate([99, 101, 100])]
    assert detect_anomalies(posts, NOW) == []


def test_engagement_drop_is_found_against_the_accounts_own_baseline() -> None:
    base = history([100, 110, 90, 105, 95, 100], start_days_ago=20)  # median 100
    recent = [post(50 + i, 3 - i, v) for i, v in enumerate([30, 40, 35])]  # median 35
    [f] = engagement_anomalies(base + recent, NOW)
    assert f.kind == "engagement_drop" and f.influencer_id == 1
    assert (f.value, f.baseline, f.score) == (35, 100, 0.35)
    # 0.35 > 0.25: a drop, not a severe one
    assert f.severity == "medium"
    assert f.key == "engagement_drop:1:2026-11-30"


def test_engagement_spike_needs_both_ratio_and_z() -> None:
    base = history([100, 110, 90, 105, 95, 100], start_days_ago=20)
    spike = [post(50 + i, 3 - i, v) for i, v in enumerate([450, 500, 520])]
    [f] = engagement_anomalies(base + spike, NOW)
    assert f.kind == "engagement_spike" and f.severity == "high" and f.score == 5.0
    # a noisy account: doubling is within its own spread (scale 1.4826 * MAD is large)
    noisy = history([10, 300, 20, 250, 40, 200, 150], start_days_ago=20)  # median 150
    bumped = [post(50 + i, 3 - i, 310) for i in range(3)]  # ratio 2.07, z about 1.0
    assert engagement_anomalies(noisy + bumped, NOW) == []


def test_too_little_history_is_no_anomaly() -> None:
    base = history([100, 100, 100, 100], start_days_ago=20)  # 4 < 5 baseline posts
    recent = [post(50 + i, 2 - i, 10) for i in range(3)]
    assert engagement_anomalies(base + recent, NOW) == []


# -- viral posts ---------------------------------------------------------------------------------


def test_a_post_far_above_the_typical_post_is_viral() -> None:
    posts = history([50, 55, 45, 52, 48, 50, 53, 47, 51, 49], start_days_ago=20)  # median 50
    posts.append(post(99, 1, 900))
    [f] = viral_posts(posts, NOW)
    assert f.kind == "viral_post" and f.post_id == 99 and f.key == "viral_post:99"
    assert (f.value, f.baseline, f.score, f.severity) == (900, 50, 18.0, "high")
    posts[-1] = post(99, 1, 200)  # 4x: not viral
    assert viral_posts(posts, NOW) == []


def test_viral_post_needs_ten_earlier_posts() -> None:
    posts = [*history([50] * 9, start_days_ago=20), post(99, 1, 5000)]
    assert viral_posts(posts, NOW) == []


# -- sentiment turning negative ------------------------------------------------------------------


def test_sentiment_turning_negative_and_null_sentiment_ignored() -> None:
    base = [post(i, 20 - i, 10, sentiment=0.4) for i in range(5)]
    recent = [post(10 + i, 3 - i, 10, sentiment=-0.3) for i in range(3)]
    unscored = [post(20 + i, 2, 10, sentiment=None) for i in range(5)]
    [f] = sentiment_turns(base + recent + unscored, NOW)
    assert f.kind == "sentiment_negative"
    assert (f.value, f.baseline, f.score) == (-0.3, 0.4, -0.7)
    # only two scored recent posts: not enough to judge
    assert sentiment_turns(base + recent[:2] + unscored, NOW) == []
    # no sentiment at all (analysis not run yet): nothing, no error
    assert sentiment_turns(unscored, NOW) == []


def test_already_negative_account_is_no_turn() -> None:
    base = [post(i, 20 - i, 10, sentiment=-0.4) for i in range(5)]
    recent = [post(10 + i, 3 - i, 10, sentiment=-0.5) for i in range(3)]
    assert sentiment_turns(base + recent, NOW) == []  # shift -0.1 only


# -- best posting times --------------------------------------------------------------------------


def test_best_posting_times_rank_slots_by_lift_and_need_enough_data() -> None:
    monday_18h = datetime(2026, 11, 2, 18, tzinfo=UTC)
    thursday_9h = datetime(2026, 11, 5, 9, tzinfo=UTC)
    posts = []
    pid = 0
    for week in range(4):
        for slot, value in ((monday_18h, 300), (thursday_9h, 100)):
            for account in (1, 2):  # account 2 is 10x bigger: lift normalises it away
                pid += 1
                scale = 10 if account == 2 else 1
                posts.append(
                    post(
                        pid,
                        0,
                        value * scale,
                        account=account,
                        influencer=account,
                        at=slot + timedelta(weeks=week),
                    )
                )
    times = best_posting_times(posts, "instagram", min_posts=16, min_slot_posts=3)
    assert times.enough_data and times.posts == 16
    best, worst = times.slots
    assert (best.weekday, best.hour, best.posts) == (0, 18, 8)
    # account medians: 1 -> 200, 2 -> 2000; lift 301/201 and 3001/2001, mean about 1.4989
    assert best.lift == pytest.approx((301 / 201 + 3001 / 2001) / 2, abs=1e-4)
    assert (worst.weekday, worst.hour) == (3, 9)
    assert times.by_weekday[0].weekday == 0 and times.by_hour[0].hour == 18
    # the same posts in Sao Paulo time (UTC-3): Monday 15:00 and Thursday 06:00
    local = best_posting_times(posts, "instagram", min_posts=16, tz=ZoneInfo("America/Sao_Paulo"))
    assert [(s.weekday, s.hour) for s in local.slots] == [(0, 15), (3, 6)]
    few = best_posting_times(posts[:10], "instagram", min_posts=16)
    assert not few.enough_data and few.slots == []
    assert best_posting_times(posts, "youtube").posts == 0


# -- digest --------------------------------------------------------------------------------------


def test_change_pct() -> None:
    assert change_pct(120, 100) == 20.0
    assert change_pct(50, 100) == -50.0
    assert change_pct(5, 0) is None and change_pct(None, 3) is None


def test_digest_metrics_highlights_and_concerns() -> None:
    day = datetime(2026, 11, 29, tzinfo=UTC)
    prev = [post(1, 0, 100, at=day - timedelta(hours=12), sentiment=0.5)]
    prev.append(post(2, 0, 100, at=day - timedelta(hours=10), influencer=2, sentiment=0.5))
    cur = [
        post(3, 0, 300, at=day + timedelta(hours=9), sentiment=-0.5),
        post(4, 0, 50, at=day + timedelta(hours=15), influencer=2, followers=0),
        post(5, 0, 10, at=day + timedelta(days=1, hours=1)),  # next day: outside the period
    ]
    snaps = {
        1: [FollowerSnapshot(day - timedelta(hours=1), 1000), FollowerSnapshot(day, 1100)],
        2: [FollowerSnapshot(day + timedelta(hours=2), 500)],
    }
    d = build_digest(
        prev + cur, day, day + timedelta(days=1), {1: "Ana", 2: "Bia"}, snapshots=snaps
    )
    m = {x.name: x for x in d.metrics}
    assert (m["posts"].value, m["posts"].previous, m["posts"].change_pct) == (2, 2, 0.0)
    assert (m["interactions"].value, m["interactions"].change_pct) == (350, 75.0)
    # engagement rate: only the post whose account has followers (300/1000) vs 100/1000
    assert (m["engagement_rate"].value, m["engagement_rate"].previous) == (0.3, 0.1)
    assert (m["sentiment"].value, m["sentiment"].previous) == (-0.5, 0.5)
    # followers at period end: 1100 + 500; at its start: 1100 (only account 1 had one)
    assert (m["followers"].value, m["followers"].previous) == (1600, 1100)
    assert d.highlights[0] == "Top post: Ana on instagram with 300 interactions."
    assert "Most engaging influencer: Ana with 300 interactions." in d.highlights
    assert "Interactions up 75.0% on the previous period." in d.highlights
    assert "Content sentiment is negative on average (-0.50)." in d.concerns
    assert d.summary == (
        "2026-11-29: 2 posts from 2 influencers earned 350 interactions "
        "(+75.0% vs the previous period)."
    )
    assert d.as_json()["metrics"][1] == {  # type: ignore[index]
        "name": "interactions",
        "value": 350,
        "previous": 200,
        "change_pct": 75.0,
    }


def test_digest_of_an_empty_day_and_anomalies_become_recommendations() -> None:
    day = datetime(2026, 11, 29, tzinfo=UTC)
    base = history([100, 110, 90, 105, 95, 100], start_days_ago=20)
    recent = [post(50 + i, 3 - i, v) for i, v in enumerate([30, 40, 35])]
    found = detect_anomalies(base + recent, NOW)
    d = build_digest([], day, day + timedelta(days=1), {1: "Ana"}, anomalies=found)
    assert d.summary == "2026-11-29: no new posts from tracked influencers; 1 issue to review."
    assert d.concerns[0] == "No posts were published by tracked influencers in this period."
    assert d.concerns[1].startswith("Ana: engagement drop, median 35 interactions")
    assert d.recommendations == [
        "Review Ana's recent content: engagement fell below its usual level."
    ]


# -- alert rules ---------------------------------------------------------------------------------


def spec(**kw: object) -> RuleSpec:
    base: dict[str, object] = dict(
        name="Likes", metric="interactions", condition="above", threshold=100.0,
        window_hours=24, channels=("in_app",),
    )  # fmt: skip
    base.update(kw)
    return RuleSpec(**base)  # type: ignore[arg-type]


def test_rule_checks() -> None:
    assert check_rule(spec()) == []
    bad = check_rule(
        spec(name=" ", metric="likes", condition="equal", window_hours=0, channels=("sms",))
    )
    assert [e.field for e in bad] == ["name", "metric", "condition", "windowHours", "channels"]
    assert [e.field for e in check_rule(spec(metric="sentiment", threshold=2.0))] == ["threshold"]
    assert [e.field for e in check_rule(spec(threshold=-1.0))] == ["threshold"]
    assert [e.field for e in check_rule(spec(condition="change_pct", threshold=0.0))] == [
        "threshold"
    ]
    assert [e.field for e in check_rule(spec(threshold=float("nan")))] == ["threshold"]
    assert [e.field for e in check_rule(spec(channels=()))] == ["channels"]
    assert [e.field for e in check_rule(spec(channels=("email", "email")))] == ["channels"]


def test_metric_values_over_a_window() -> None:
    posts = [
        post(1, 0.5, 80, sentiment=0.5),
        post(2, 0.2, 40, followers=0),
        post(3, 2, 500, sentiment=-1.0),  # outside the last 24 h
    ]
    start, end = NOW - timedelta(hours=24), NOW
    assert metric_value("posts", posts, start, end) == 2
    assert metric_value("interactions", posts, start, end) == 120
    assert metric_value("engagement_rate", posts, start, end) == 0.08
    assert metric_value("sentiment", posts, start, end) == 0.5
    assert metric_value("sentiment", posts[1:2], start, end) is None
    snaps = {1: [FollowerSnapshot(NOW - timedelta(days=2), 900)]}
    assert metric_value("followers", posts, start, end, snaps) == 900


def test_change_pct_rule() -> None:
    rule = spec(condition="change_pct", threshold=-50.0)
    posts = [post(1, 1.5, 100), post(2, 0.5, 40)]  # previous day 100, last day 40: -60 %
    obs = observe(rule, posts, NOW)
    assert (obs.value, obs.previous, obs.change_pct, obs.holds) == (40, 100, -60.0, True)
    assert observe(spec(condition="change_pct", threshold=10.0), posts, NOW).holds is False
    assert observe(rule, [post(2, 0.5, 40)], NOW).holds is None  # previous 0: cannot judge


def test_fires_once_per_crossing_and_rearms() -> None:
    state, fired = ARMED, []
    for holds in (False, True, True, None, True, False, False, True):
        state, fire = next_state(state, holds)
        fired.append(fire)
    assert fired == [False, True, False, False, False, False, False, True]
    assert state == FIRED
