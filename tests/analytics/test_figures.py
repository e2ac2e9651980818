"""The pure pieces the analytics pass adds: per-post keywords, pooled engagement, combined
growth, an influencer's figures and their JSON, and `analyze_texts`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.analytics.engagement import (
    FollowerSnapshot,
    PostStats,
    combined_growth,
    follower_growth,
    pooled_engagement_rates,
)
from domain.analytics.figures import (
    AccountData,
    authenticity_json,
    breakdown_json,
    influencer_figures,
    inputs_json,
    peer_rates,
)
from domain.analytics.keywords import keywords_per_text
from domain.analytics.text import analyze_texts

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_keywords_per_text_ranks_each_text_against_the_batch() -> None:
    texts = [
        "the beach was lovely, beach sunset",
        "coffee and the beach",
        "coffee coffee tasting notes",
        "http://x.y @bob #tag the and",  # nothing left: no keywords
    ]
    found = keywords_per_text(texts, "en", top_n=2)
    # "beach" occurs twice in text 0 (sublinear tf) and in two texts; "sunset"/"lovely" once
    assert found[0][0] == "beach"
    assert set(found[1]) == {"beach", "coffee"}
    assert found[2][0] == "coffee"
    assert found[3] == []
    assert keywords_per_text([], "en") == []
    assert keywords_per_text(["the and of"], "en") == [[]]


def test_pooled_engagement_divides_each_post_by_its_own_accounts_followers() -> None:
    ig = ([PostStats(likes=90, comments=10, views=1000)], 1000)  # 0.10, by views 0.10
    yt = ([PostStats(likes=5, comments=5), PostStats(likes=20, comments=0)], 100)  # 0.10, 0.20
    rates = pooled_engagement_rates([ig, yt])
    assert rates.by_followers == pytest.approx((0.10 + 0.10 + 0.20) / 3)
    assert rates.by_views == pytest.approx(0.10)
    assert (rates.posts, rates.posts_with_views, rates.followers) == (3, 1, 1100)
    empty = pooled_engagement_rates([([], 0)])
    assert empty.by_followers is None and empty.by_views is None


def test_combined_growth_sums_the_accounts_with_enough_history() -> None:
    a = [FollowerSnapshot(T0, 1000), FollowerSnapshot(T0 + timedelta(days=8), 1100)]
    b = [FollowerSnapshot(T0, 100), FollowerSnapshot(T0 + timedelta(days=8), 80)]
    c = [FollowerSnapshot(T0 + timedelta(days=7), 50)]  # too little history: left out
    g = combined_growth([follower_growth(s, 7) for s in (a, b, c)], 7)
    assert g is not None
    assert (g.start_followers, g.end_followers, g.absolute) == (1100, 1180, 80)
    assert g.relative == pytest.approx(80 / 1100)
    assert combined_growth([None, None], 7) is None


def _account(i: int, followers: int, interactions: int, **kw: object) -> AccountData:
    posts = [PostStats(likes=interactions, comments=0) for _ in range(4)]
    times = [T0 + timedelta(days=7 * k) for k in range(4)]
    return AccountData(i, "instagram", f"acct{i}", followers, posts, times, **kw)  # type: ignore[arg-type]


def test_influencer_figures_breakdown_sums_and_inputs_are_stored() -> None:
    now = T0 + timedelta(days=28)
    snaps = [FollowerSnapshot(now - timedelta(days=d), 10_000 - 10 * d) for d in range(0, 40)]
    acc = _account(1, 10_000, 300, sentiments=(0.5, -0.1), snapshots=snaps)
    f = influencer_figures(7, [acc], now)
    assert f.influencer_id == 7 and f.followers == 10_000
    assert f.engagement.by_followers == pytest.approx(0.03)
    assert f.mean_sentiment == pytest.approx(0.2)
    g30 = f.growth[30]
    assert g30 is not None and g30.absolute == 300
    assert f.growth[90] is None  # 39 days of history
    assert f.influence.score == pytest.approx(sum(c["contribution"] for c in breakdown_json(f)))
    assert 0 <= f.influence.score <= 100
    inputs = inputs_json(f)
    assert inputs["posts"] == 4 and inputs["growth"]["90"] is None
    assert inputs["growth"]["30"]["absolute"] == 300
    assert authenticity_json(f)["score"] == 100.0 and f.authenticity.account_id == 1


def test_influencer_without_accounts_has_neutral_figures() -> None:
    f = influencer_figures(3, [], T0)
    assert f.followers == 0 and f.engagement.by_followers is None
    assert f.authenticity.score == 100.0 and f.authenticity.reasons == []
    assert f.authenticity.account_id is None


def test_authenticity_is_the_weakest_accounts_with_its_label() -> None:
    now = T0 + timedelta(days=30)
    steady = [FollowerSnapshot(T0 + timedelta(days=d), 5000 + 10 * d) for d in range(30)]
    bought = list(steady)
    bought[20] = FollowerSnapshot(bought[20].at, 9000)  # a jump, then back to the trend
    bought[21:] = [FollowerSnapshot(s.at, s.followers + 4000) for s in steady[21:]]
    clean = _account(1, 5300, 100, snapshots=steady)
    dodgy = AccountData(2, "tiktok", "dodgy", 9300, clean.posts, clean.post_times, snapshots=bought)
    f = influencer_figures(5, [clean, dodgy], now)
    assert f.authenticity.account_id == 2
    assert f.authenticity.score < 100
    assert f.authenticity.reasons[0].code == "follower_jump"
    assert f.authenticity.reasons[0].detail.startswith("tiktok @dodgy: ")


def test_peers_exclude_the_account_itself() -> None:
    accounts = [_account(i, 5000, 100 if i else 2000) for i in range(7)]  # nano band
    peers = peer_rates(accounts)
    assert len(peers["nano"]) == 7
    f = influencer_figures(1, [accounts[0]], T0 + timedelta(days=28), peers)
    assert [r.code for r in f.authenticity.reasons] == ["engagement_off_peers"]


def test_analyze_texts_detects_scores_and_extracts_keywords() -> None:
    texts = [
        "What a wonderful day, I love this beach so much!",
        "Que dia maravilhoso, adorei a praia demais!",
        "Bonjour tout le monde, je suis à Paris aujourd'hui",
        "",
    ]
    out = analyze_texts(texts)
    assert [a.language for a in out] == ["en", "pt", "und", "und"]
    assert out[0].sentiment == "positive" and out[0].score is not None and out[0].score > 0
    assert out[1].sentiment == "positive"
    assert out[2].sentiment is None and out[2].score is None and out[2].confidence is None
    assert out[0].keywords and "beach" in out[0].keywords
    assert out[1].keywords and "praia" in out[1].keywords
    assert out[3].keywords == []
    assert all(a.keywords is None for a in analyze_texts(texts[:2], keywords=False))


def test_post_scope_numbers_its_parameters_after_the_callers() -> None:
    from domain.analytics.service import PostScope

    scope = PostScope(since=T0, until=T0 + timedelta(days=1), influencer_id=9)
    where, params = scope.where(first_param=3)
    assert where == (
        "p.analyzed_at IS NOT NULL AND p.published_at >= $3 AND p.published_at < $4"
        " AND p.influencer_id = $5"
    )
    assert params == [T0, T0 + timedelta(days=1), 9]
    where, params = PostScope(since=T0, until=T0).where()
    assert where.endswith("p.published_at < $2") and len(params) == 2
