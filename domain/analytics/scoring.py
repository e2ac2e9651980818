"""Influence score 0-100 with its breakdown (pure, deterministic). Formula: docs/analytics.md.

score = sum(weight_c * value_c) over the components c below, each value in [0, 100]:

    reach        0.30  clamp(100 * (log10(max(followers, 1)) - 2) / 5): 100 followers -> 0,
                       10M followers -> 100, linear in log10 between
    engagement   0.30  clamp(100 * engagement_rate_by_followers / 0.06): 6 % or more -> 100
    growth       0.15  50 + 50 * tanh(relative_growth_30d / 0.10): 0 % -> 50, +10 % -> 88,
                       -10 % -> 12; unknown -> 50
    sentiment    0.10  50 * (mean_sentiment + 1): -1 -> 0, 0 -> 50, +1 -> 100; unknown -> 50
    consistency  0.15  100 * active_weeks / window_weeks (weeks with at least one post among
                       the last `window_weeks` weeks ending at `now`)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

FORMULA_VERSION = "influence-v1"
WEIGHTS: dict[str, float] = {
    "reach": 0.30,
    "engagement": 0.30,
    "growth": 0.15,
    "sentiment": 0.10,
    "consistency": 0.15,
}
REACH_MIN_LOG10 = 2.0  # 100 followers
REACH_MAX_LOG10 = 7.0  # 10M followers
ENGAGEMENT_FULL = 0.06  # engagement rate (by followers) scoring 100
GROWTH_SCALE = 0.10  # relative 30-day growth at which tanh reaches 0.76
NEUTRAL = 50.0  # value of a component whose input is unknown
DEFAULT_WINDOW_WEEKS = 12


@dataclass(frozen=True)
class InfluenceInputs:
    followers: int
    engagement_rate: float | None  # mean per-post engagement rate by followers
    growth_30d: float | None  # relative follower growth over 30 days
    mean_sentiment: float | None  # mean sentiment score of the content, in [-1, 1]
    post_times: Sequence[datetime] = field(default_factory=tuple)
    now: datetime | None = None  # end of the consistency window; default: the latest post
    window_weeks: int = DEFAULT_WINDOW_WEEKS


@dataclass(frozen=True)
class ScoreComponent:
    name: str
    value: float  # normalised, 0-100
    weight: float
    contribution: float  # weight * value; the contributions sum to the score
    raw: float | None  # the input the value was computed from (None: unknown)


@dataclass(frozen=True)
class InfluenceScore:
    score: float  # 0-100
    breakdown: list[ScoreComponent]
    inputs: InfluenceInputs
    formula: str = FORMULA_VERSION


def _clamp(value: float) -> float:
    return min(100.0, max(0.0, value))


def reach_value(followers: int) -> float:
    log = math.log10(max(followers, 1))
    return _clamp(100.0 * (log - REACH_MIN_LOG10) / (REACH_MAX_LOG10 - REACH_MIN_LOG10))


def engagement_value(rate: float | None) -> float:
    return 0.0 if rate is None else _clamp(100.0 * rate / ENGAGEMENT_FULL)


def growth_value(relative: float | None) -> float:
    return NEUTRAL if relative is None else _clamp(50.0 + 50.0 * math.tanh(relative / GROWTH_SCALE))


def sentiment_value(mean: float | None) -> float:
    return NEUTRAL if mean is None else _clamp(50.0 * (max(-1.0, min(1.0, mean)) + 1.0))


def active_week_share(
    post_times: Sequence[datetime], now: datetime | None, window_weeks: int
) -> float:
    """Share of the `window_weeks` 7-day periods ending at `now` that hold at least one post."""
    if not post_times or window_weeks <= 0:
        return 0.0
    end = now if now is not None else max(post_times)
    start = end - timedelta(weeks=window_weeks)
    active = set()
    for t in post_times:
        if start < t <= end:
            active.add(min(window_weeks - 1, int((end - t) / timedelta(weeks=1))))
    return len(active) / window_weeks


def influence_score(inputs: InfluenceInputs) -> InfluenceScore:
    """The influence score of one account/influencer with its weighted breakdown."""
    consistency = active_week_share(inputs.post_times, inputs.now, inputs.window_weeks)
    parts = [
        ("reach", reach_value(inputs.followers), float(inputs.followers)),
        ("engagement", engagement_value(inputs.engagement_rate), inputs.engagement_rate),
        ("growth", growth_value(inputs.growth_30d), inputs.growth_30d),
        ("sentiment", sentiment_value(inputs.mean_sentiment), inputs.mean_sentiment),
        ("consistency", 100.0 * consistency, consistency),
    ]
    breakdown = [
        ScoreComponent(
            name=name,
            value=value,
            weight=WEIGHTS[name],
            contribution=WEIGHTS[name] * value,
            raw=raw,
        )
        for name, value, raw in parts
    ]
    return InfluenceScore(
        score=_clamp(math.fsum(c.contribution for c in breakdown)),
        breakdown=breakdown,
        inputs=inputs,
    )
