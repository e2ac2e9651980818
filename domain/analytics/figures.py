"""An influencer's stored figures from its accounts' data (pure, deterministic).

The analytics job loads, per account, the recent posts (with their sentiment scores), the
follower snapshots and recent comment texts, and calls `influencer_figures`; it stores the
result as one `influencer_score` row (see `figures_record`). Formulas: docs/analytics.md.

- engagement: `pooled_engagement_rates` (each post against its own account's followers)
- growth 7/30/90 days: `combined_growth` of the accounts' `follower_growth`
- mean sentiment: mean sentiment score of the analysed posts
- influence score: `influence_score` (reach = total followers, engagement by followers,
  growth over 30 days, mean sentiment, consistency of the post times)
- authenticity: `authenticity` per account (peers: the tenant's other accounts of the same
  size band); the influencer's is its weakest account's, reasons prefixed with the account
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from domain.analytics.authenticity import AuthenticityInputs, AuthenticityResult, Reason, size_band
from domain.analytics.authenticity import authenticity as account_authenticity
from domain.analytics.engagement import (
    GROWTH_WINDOWS_DAYS,
    EngagementRates,
    FollowerSnapshot,
    Growth,
    PostStats,
    combined_growth,
    engagement_rates,
    follower_growth,
    pooled_engagement_rates,
)
from domain.analytics.scoring import InfluenceInputs, InfluenceScore, influence_score


@dataclass(frozen=True)
class AccountData:
    account_id: int
    platform: str
    handle: str
    followers: int
    posts: Sequence[PostStats] = field(default_factory=tuple)  # oldest first
    post_times: Sequence[datetime] = field(default_factory=tuple)  # same order as posts
    sentiments: Sequence[float] = field(default_factory=tuple)  # scores of analysed posts
    snapshots: Sequence[FollowerSnapshot] = field(default_factory=tuple)
    comments: Sequence[str] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        return f"{self.platform} @{self.handle}"


@dataclass(frozen=True)
class InfluencerAuthenticity:
    score: float
    reasons: list[Reason]  # of the weakest account, detail prefixed with the account
    account_id: int | None  # the weakest account (None: the influencer has no account)
    result: AuthenticityResult | None


@dataclass(frozen=True)
class InfluencerFigures:
    influencer_id: int
    computed_at: datetime
    followers: int
    engagement: EngagementRates
    growth: dict[int, Growth | None]  # 7, 30, 90 days
    mean_sentiment: float | None
    influence: InfluenceScore
    authenticity: InfluencerAuthenticity


def account_engagement_rate(account: AccountData) -> float | None:
    """Mean engagement rate by followers of one account (its peers' figure)."""
    return engagement_rates(account.posts, account.followers).by_followers


def peer_rates(accounts: Sequence[AccountData]) -> dict[str, list[tuple[int, float]]]:
    """(account id, engagement rate) of every account with a known rate, per size band: the
    peers an account is compared with (itself left out by `influencer_figures`)."""
    bands: dict[str, list[tuple[int, float]]] = {}
    for a in accounts:
        rate = account_engagement_rate(a)
        if rate is not None:
            bands.setdefault(size_band(a.followers), []).append((a.account_id, rate))
    return bands


def _authenticity(
    accounts: Sequence[AccountData], peers: Mapping[str, Sequence[tuple[int, float]]]
) -> InfluencerAuthenticity:
    worst: tuple[AccountData, AuthenticityResult] | None = None
    for a in accounts:
        result = account_authenticity(
            AuthenticityInputs(
                snapshots=a.snapshots,
                posts=a.posts,
                followers=a.followers,
                peer_engagement_rates=[
                    r for i, r in peers.get(size_band(a.followers), ()) if i != a.account_id
                ],
                comments=a.comments,
            )
        )
        if worst is None or (result.score, -a.followers) < (worst[1].score, -worst[0].followers):
            worst = (a, result)
    if worst is None:
        return InfluencerAuthenticity(score=100.0, reasons=[], account_id=None, result=None)
    account, result = worst
    reasons = [replace(r, detail=f"{account.label}: {r.detail}") for r in result.reasons]
    return InfluencerAuthenticity(result.score, reasons, account.account_id, result)


def influencer_figures(
    influencer_id: int,
    accounts: Sequence[AccountData],
    now: datetime,
    peers: Mapping[str, Sequence[tuple[int, float]]] | None = None,
) -> InfluencerFigures:
    """Every stored figure of one influencer at `now` (see the module docstring)."""
    engagement = pooled_engagement_rates([(a.posts, a.followers) for a in accounts])
    growth = {
        days: combined_growth([follower_growth(a.snapshots, days, now) for a in accounts], days)
        for days in GROWTH_WINDOWS_DAYS
    }
    scores = [s for a in accounts for s in a.sentiments]
    mean_sentiment = sum(scores) / len(scores) if scores else None
    g30 = growth.get(30)
    influence = influence_score(
        InfluenceInputs(
            followers=engagement.followers,
            engagement_rate=engagement.by_followers,
            growth_30d=g30.relative if g30 is not None else None,
            mean_sentiment=mean_sentiment,
            post_times=tuple(t for a in accounts for t in a.post_times),
            now=now,
        )
    )
    return InfluencerFigures(
        influencer_id=influencer_id,
        computed_at=now,
        followers=engagement.followers,
        engagement=engagement,
        growth=growth,
        mean_sentiment=mean_sentiment,
        influence=influence,
        authenticity=_authenticity(accounts, peers if peers is not None else peer_rates(accounts)),
    )


def _growth_json(g: Growth | None) -> dict[str, Any] | None:
    if g is None:
        return None
    return {
        "days": g.days,
        "start_at": g.start_at.isoformat(),
        "end_at": g.end_at.isoformat(),
        "start_followers": g.start_followers,
        "end_followers": g.end_followers,
        "absolute": g.absolute,
        "relative": g.relative,
    }


def breakdown_json(figures: InfluencerFigures) -> list[dict[str, Any]]:
    return [
        {
            "name": c.name,
            "value": c.value,
            "weight": c.weight,
            "contribution": c.contribution,
            "raw": c.raw,
        }
        for c in figures.influence.breakdown
    ]


def inputs_json(figures: InfluencerFigures) -> dict[str, Any]:
    """What the figures were computed from (stored beside them: every figure explainable)."""
    i = figures.influence.inputs
    post_times = list(i.post_times)
    return {
        "followers": figures.followers,
        "posts": figures.engagement.posts,
        "posts_with_views": figures.engagement.posts_with_views,
        "engagement_rate_by_followers": figures.engagement.by_followers,
        "engagement_rate_by_views": figures.engagement.by_views,
        "growth": {str(d): _growth_json(g) for d, g in figures.growth.items()},
        "mean_sentiment": figures.mean_sentiment,
        "first_post_at": min(post_times).isoformat() if post_times else None,
        "last_post_at": max(post_times).isoformat() if post_times else None,
        "consistency_window_weeks": i.window_weeks,
        "now": figures.computed_at.isoformat(),
    }


def authenticity_json(figures: InfluencerFigures) -> dict[str, Any]:
    a = figures.authenticity
    r = a.result
    return {
        "score": a.score,
        "account_id": a.account_id,
        "reasons": [{"code": x.code, "penalty": x.penalty, "detail": x.detail} for x in a.reasons],
        "size_band": r.size_band if r else None,
        "jumps": len(r.jumps) if r else 0,
        "own_baseline_ratio": r.own_baseline_ratio if r else None,
        "peer_z": r.peer_z
        if r is not None and r.peer_z not in (float("inf"), float("-inf"))
        else None,
        "duplication_ratio": r.duplication_ratio if r else None,
    }
