from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from domain.analytics.authenticity import (
    AuthenticityInputs,
    authenticity,
    duplication_ratio,
    follower_jumps,
    own_baseline_ratio,
    robust_z,
    size_band,
)
from domain.analytics.engagement import FollowerSnapshot, PostStats

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def daily(values: list[int]) -> list[FollowerSnapshot]:
    return [FollowerSnapshot(T0 + timedelta(days=i), v) for i, v in enumerate(values)]


def steady(days: int, start: int = 20_000, per_day: int = 40, noise: int = 15) -> list[int]:
    rng = random.Random(7)  # fixed seed: the same series on every run
    values, current = [], start
    for _ in range(days):
        values.append(current)
        current += per_day + rng.randint(-noise, noise)
    return values


def test_steady_series_is_not_flagged() -> None:
    assert follower_jumps(daily(steady(60))) == []
    # perfectly regular growth (MAD 0) is not flagged either
    assert follower_jumps(daily([10_000 + 25 * i for i in range(30)])) == []
    result = authenticity(AuthenticityInputs(snapshots=daily(steady(60)), followers=22_000))
    assert result.score == 100 and result.reasons == []


def test_bought_followers_jump_is_flagged() -> None:
    values = steady(40)
    values[25:] = [v + 6_000 for v in values[25:]]  # +6,000 overnight on day 25, then kept
    jumps = follower_jumps(daily(values))
    assert len(jumps) == 1
    jump = jumps[0]
    assert jump.at == T0 + timedelta(days=25)
    assert jump.gain_per_day == pytest.approx(values[25] - values[24])
    assert jump.z > 6
    result = authenticity(AuthenticityInputs(snapshots=daily(values), followers=values[-1]))
    assert result.score == 75
    assert [r.code for r in result.reasons] == ["follower_jump"]
    assert "+6" in result.reasons[0].detail


def test_gaps_are_divided_per_day() -> None:
    # 10 days at +100/day, then a 5-day gap with +500: the same rate, not a jump
    snapshots = daily([1_000 + 100 * i for i in range(10)])
    snapshots.append(FollowerSnapshot(snapshots[-1].at + timedelta(days=5), 1_900 + 500))
    assert follower_jumps(snapshots) == []


def test_too_little_history_flags_nothing() -> None:
    assert follower_jumps(daily([1_000, 1_001, 1_002, 50_000])) == []


def test_small_jump_below_one_percent_is_not_flagged() -> None:
    values = [100_000 + i for i in range(30)]  # +1/day
    values[20:] = [v + 500 for v in values[20:]]  # huge z, but only 0.5 % of followers
    assert follower_jumps(daily(values)) == []


def posts(rates_per_1000: list[int]) -> list[PostStats]:
    return [PostStats(likes=r, comments=0) for r in rates_per_1000]


def test_engagement_off_own_baseline() -> None:
    baseline = [30, 32, 28, 31, 29, 30, 33, 27, 30, 31]
    assert own_baseline_ratio(posts([*baseline, 30, 29, 31, 30, 32]), 1_000) == pytest.approx(1)
    spiky = posts([*baseline, 150, 160, 140, 155, 145])  # 5x the usual
    assert own_baseline_ratio(spiky, 1_000) == pytest.approx(150 / 30)
    assert own_baseline_ratio(posts(baseline), 1_000) is None  # too few posts
    result = authenticity(AuthenticityInputs(posts=spiky, followers=1_000))
    assert [r.code for r in result.reasons] == ["engagement_off_baseline"]
    assert result.score == 85


def test_engagement_off_peers_by_size_band() -> None:
    peers = [0.020, 0.025, 0.030, 0.028, 0.022, 0.026]
    normal = authenticity(
        AuthenticityInputs(posts=posts([27] * 3), followers=1_000, peer_engagement_rates=peers)
    )
    assert normal.reasons == [] and normal.peer_z is not None and abs(normal.peer_z) < 1
    off = authenticity(
        AuthenticityInputs(posts=posts([300] * 3), followers=1_000, peer_engagement_rates=peers)
    )
    assert [r.code for r in off.reasons] == ["engagement_off_peers"]
    assert "nano band" in off.reasons[0].detail
    # fewer than 5 peers: no comparison
    assert (
        authenticity(
            AuthenticityInputs(posts=posts([300]), followers=1_000, peer_engagement_rates=peers[:4])
        ).peer_z
        is None
    )


@pytest.mark.parametrize(
    ("followers", "band"),
    [
        (0, "nano"),
        (9_999, "nano"),
        (10_000, "micro"),
        (100_000, "mid"),
        (500_000, "macro"),
        (1_000_000, "mega"),
    ],
)
def test_size_bands(followers: int, band: str) -> None:
    assert size_band(followers) == band


def test_comment_duplication() -> None:
    assert duplication_ratio([]) is None
    assert duplication_ratio(["Nice!", "nice!  ", "@bob Nice!", "love it", "   "]) == pytest.approx(
        2 / 4
    )
    organic = [f"comment number {i}" for i in range(20)]
    assert authenticity(AuthenticityInputs(comments=organic)).reasons == []
    botty = organic[:10] + ["Follow me for more!! https://spam.example/x"] * 10
    result = authenticity(AuthenticityInputs(comments=botty))
    assert result.duplication_ratio == pytest.approx(9 / 20)
    assert [r.code for r in result.reasons] == ["comment_duplication"]
    assert result.score == pytest.approx(100 - 60 * 9 / 20)


def test_reasons_add_up_and_score_is_bounded() -> None:
    values = steady(40)
    values[15:] = [v + 5_000 for v in values[15:]]
    values[30:] = [v + 5_000 for v in values[30:]]
    values[35:] = [v + 5_000 for v in values[35:]]
    result = authenticity(
        AuthenticityInputs(
            snapshots=daily(values),
            posts=posts([30] * 10 + [200] * 5),
            followers=1_000,
            peer_engagement_rates=[0.02, 0.025, 0.03, 0.028, 0.022],
            comments=["same"] * 20,
        )
    )
    assert len(result.jumps) == 3
    codes = {r.code for r in result.reasons}
    assert codes == {
        "follower_jump",
        "engagement_off_baseline",
        "engagement_off_peers",
        "comment_duplication",
    }
    # 50 (jumps, capped) + 15 + 15 + 30 (duplication, capped) > 100
    assert result.score == 0
    assert [r.penalty for r in result.reasons] == sorted(
        (r.penalty for r in result.reasons), reverse=True
    )


def test_robust_z() -> None:
    assert robust_z(10, [1, 2, 3, 4, 100]) == pytest.approx((10 - 3) / (1.4826 * 1))
    assert robust_z(5, [5, 5, 5]) == 0
    assert robust_z(6, [5, 5, 5], min_scale=0.5) == pytest.approx(2)
