from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from domain.analytics.scoring import (
    WEIGHTS,
    InfluenceInputs,
    active_week_share,
    engagement_value,
    growth_value,
    influence_score,
    reach_value,
    sentiment_value,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def every(days: int, count: int) -> list[datetime]:
    return [NOW - timedelta(days=days * i) for i in range(count)]


def test_weights_sum_to_one() -> None:
    assert math.fsum(WEIGHTS.values()) == pytest.approx(1.0)


def test_hand_checked_score_and_breakdown_sums_to_it() -> None:
    inputs = InfluenceInputs(
        followers=100_000,  # log10 = 5 -> (5 - 2) / 5 = 60
        engagement_rate=0.03,  # 0.03 / 0.06 = 50
        growth_30d=0.0,  # 50
        mean_sentiment=0.2,  # 50 * 1.2 = 60
        post_times=every(3, 40),  # a post every 3 days: all 12 weeks active -> 100
        now=NOW,
    )
    result = influence_score(inputs)
    values = {c.name: c.value for c in result.breakdown}
    assert values == pytest.approx(
        {"reach": 60, "engagement": 50, "growth": 50, "sentiment": 60, "consistency": 100}
    )
    # 0.3*60 + 0.3*50 + 0.15*50 + 0.1*60 + 0.15*100 = 18 + 15 + 7.5 + 6 + 15
    assert result.score == pytest.approx(61.5)
    assert math.fsum(c.contribution for c in result.breakdown) == pytest.approx(result.score)
    assert result.inputs is inputs
    assert {c.name: c.raw for c in result.breakdown}["engagement"] == 0.03


@pytest.mark.parametrize(
    "inputs",
    [
        InfluenceInputs(0, None, None, None),
        InfluenceInputs(3_000, 0.011, -0.04, -0.3, every(10, 5), NOW),
        InfluenceInputs(50_000_000, 0.5, 3.0, 1.0, every(1, 200), NOW),
        InfluenceInputs(120, 0.0, -0.9, -1.0, every(30, 2)),
    ],
)
def test_breakdown_sums_to_score_in_range(inputs: InfluenceInputs) -> None:
    result = influence_score(inputs)
    assert 0 <= result.score <= 100
    assert math.fsum(c.contribution for c in result.breakdown) == pytest.approx(result.score)
    for c in result.breakdown:
        assert 0 <= c.value <= 100
        assert c.contribution == pytest.approx(c.weight * c.value)


def test_extremes() -> None:
    top = influence_score(InfluenceInputs(10_000_000, 0.06, 10.0, 1.0, every(1, 90), NOW))
    assert top.score == pytest.approx(100, abs=1e-6)
    assert influence_score(InfluenceInputs(0, 0.0, -10.0, -1.0)).score == pytest.approx(0, abs=1e-6)


def test_transforms() -> None:
    assert reach_value(100) == 0 and reach_value(10_000_000) == 100
    assert reach_value(10_000) == pytest.approx(40)
    assert reach_value(10**9) == 100
    assert engagement_value(None) == 0 and engagement_value(0.12) == 100
    assert growth_value(None) == 50 and growth_value(0.0) == 50
    assert growth_value(0.1) == pytest.approx(50 + 50 * math.tanh(1))
    assert growth_value(-0.1) == pytest.approx(100 - growth_value(0.1))
    assert sentiment_value(None) == 50 and sentiment_value(-1) == 0 and sentiment_value(1) == 100


def test_consistency_counts_active_weeks() -> None:
    # posts in weeks 0, 1 and 5 (counting back from NOW) of 12
    times = [NOW, NOW - timedelta(days=1), NOW - timedelta(days=8), NOW - timedelta(days=36)]
    assert active_week_share(times, NOW, 12) == pytest.approx(3 / 12)
    # a post older than the window or after `now` does not count
    assert active_week_share([NOW - timedelta(days=100), NOW + timedelta(days=1)], NOW, 12) == 0
    assert active_week_share([], NOW, 12) == 0
