"""Anomalies and best posting times (pure, deterministic); the daily digest is digest.py.

Inputs are plain dataclasses built by the caller from posts and follower snapshots; nothing
here reads the database or the clock. Formulas and thresholds: docs/analytics.md, "Insights
and alerts".
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

# -- anomalies ---------------------------------------------------------------------------------

RECENT_DAYS = 7  # the window judged
BASELINE_DAYS = 28  # the account's own history before it
MIN_RECENT_POSTS = 3
MIN_BASELINE_POSTS = 5
SPIKE_RATIO = 2.0  # recent median interactions >= 2x the baseline median ...
DROP_RATIO = 0.5  # ... or <= half of it
MIN_ABS_Z = 3.0  # and at least 3 robust standard deviations away
VIRAL_RATIO = 5.0  # a post with >= 5x the account's typical interactions ...
VIRAL_MIN_Z = 5.0  # ... and >= 5 robust standard deviations above it
VIRAL_MIN_HISTORY = 10  # earlier posts of the account needed to know its typical post
NEGATIVE_LEVEL = -0.2  # mean sentiment of the recent scored posts at or below this ...
NEGATIVE_SHIFT = -0.3  # ... and at least 0.3 below the baseline mean
MIN_RECENT_SCORED = 3
MIN_BASELINE_SCORED = 5

ANOMALY_KINDS = ("engagement_spike", "engagement_drop", "viral_post", "sentiment_negative")


@dataclass(frozen=True)
class PostPoint:
    """One post as the insights see it."""

    post_id: int
    influencer_id: int
    account_id: int
    platform: str
    published_at: datetime
    interactions: int  # likes + comments + shares
    followers: int = 0  # the account's followers (0: unknown)
    sentiment_score: float | None = None  # NULL until the analysis pass scored it


@dataclass(frozen=True)
class Finding:
    """An anomaly found in the data. `key` identifies it: the same key is the same anomaly."""

    key: str
    kind: str  # one of ANOMALY_KINDS
    influencer_id: int
    post_id: int | None
    metric: str  # "interactions_per_post" | "interactions" | "sentiment"
    value: float  # the recent figure (or the post's)
    baseline: float  # the account's own typical figure
    score: float  # ratio value/baseline (engagement) or difference (sentiment)
    severity: str  # "medium" | "high"
    detail: str
    window_start: datetime
    window_end: datetime


def robust_scale(values: Sequence[float], center: float) -> float:
    """1.4826 x median absolute deviation, floored at 10 % of |center| and at 1."""
    mad = statistics.median(abs(v - center) for v in values)
    return max(1.4826 * mad, 0.1 * abs(center), 1.0)


def _by_influencer(posts: Iterable[PostPoint]) -> dict[int, list[PostPoint]]:
    out: dict[int, list[PostPoint]] = defaultdict(list)
    for p in posts:
        out[p.influencer_id].append(p)
    return out


def engagement_anomalies(
    posts: Sequence[PostPoint],
    now: datetime,
    recent_days: int = RECENT_DAYS,
    baseline_days: int = BASELINE_DAYS,
) -> list[Finding]:
    """Sudden spikes and drops of an influencer's interactions per post against its own
    baseline: median of the recent window (now - recent_days, now] against the median of the
    `baseline_days` before it."""
    start = now - timedelta(days=recent_days)
    base_start = start - timedelta(days=baseline_days)
    found: list[Finding] = []
    for influencer_id, items in sorted(_by_influencer(posts).items()):
        recent = [float(p.interactions) for p in items if start < p.published_at <= now]
        base = [float(p.interactions) for p in items if base_start < p.published_at <= start]
        if len(recent) < MIN_RECENT_POSTS or len(base) < MIN_BASELINE_POSTS:
            continue
        base_median = statistics.median(base)
        recent_median = statistics.median(recent)
        z = (recent_median - base_median) / robust_scale(base, base_median)
        ratio = recent_median / base_median if base_median > 0 else float("inf")
        if ratio >= SPIKE_RATIO and z >= MIN_ABS_Z:
            kind, severe = "engagement_spike", ratio >= 2 * SPIKE_RATIO
            word = "above"
        elif ratio <= DROP_RATIO and z <= -MIN_ABS_Z:
            kind, severe = "engagement_drop", ratio <= DROP_RATIO / 2
            word = "below"
        else:
            continue
        found.append(
            Finding(
                key=f"{kind}:{influencer_id}:{now.date().isoformat()}",
                kind=kind,
                influencer_id=influencer_id,
                post_id=None,
                metric="interactions_per_post",
                value=recent_median,
                baseline=base_median,
                score=round(ratio, 4) if ratio != float("inf") else 1e9,
                severity="high" if severe else "medium",
                detail=(
                    f"median {recent_median:g} interactions per post over the last {recent_days} "
                    f"days ({len(recent)} posts), {word} the usual {base_median:g} "
                    f"({len(base)} posts in the {baseline_days} days before)"
                ),
                window_start=start,
                window_end=now,
            )
        )
    return found


def viral_posts(
    posts: Sequence[PostPoint],
    now: datetime,
    recent_days: int = RECENT_DAYS,
    baseline_days: int = BASELINE_DAYS,
) -> list[Finding]:
    """Posts of the recent window with far more interactions than the account's typical post
    (median of its posts in the `baseline_days` before the post)."""
    start = now - timedelta(days=recent_days)
    by_account: dict[int, list[PostPoint]] = defaultdict(list)
    for p in posts:
        by_account[p.account_id].append(p)
    found: list[Finding] = []
    for _, items in sorted(by_account.items()):
        items.sort(key=lambda p: (p.published_at, p.post_id))
        for p in items:
            if not start < p.published_at <= now:
                continue
            since = p.published_at - timedelta(days=baseline_days)
            history = [
                float(q.interactions) for q in items if since <= q.published_at < p.published_at
            ]
            if len(history) < VIRAL_MIN_HISTORY:
                continue
            typical = statistics.median(history)
            z = (p.interactions - typical) / robust_scale(history, typical)
            ratio = p.interactions / typical if typical > 0 else float("inf")
            if ratio < VIRAL_RATIO or z < VIRAL_MIN_Z:
                continue
            found.append(
                Finding(
                    key=f"viral_post:{p.post_id}",
                    kind="viral_post",
                    influencer_id=p.influencer_id,
                    post_id=p.post_id,
                    metric="interactions",
                    value=float(p.interactions),
                    baseline=typical,
                    score=round(ratio, 4) if ratio != float("inf") else 1e9,
                    severity="high" if ratio >= 2 * VIRAL_RATIO else "medium",
                    detail=(
                        f"{p.interactions} interactions, {ratio:.1f}x the account's typical "
                        f"{typical:g} ({len(history)} earlier posts)"
                    ),
                    window_start=start,
                    window_end=now,
                )
            )
    return found


def sentiment_turns(
    posts: Sequence[PostPoint],
    now: datetime,
    recent_days: int = RECENT_DAYS,
    baseline_days: int = BASELINE_DAYS,
) -> list[Finding]:
    """An influencer's content sentiment turning negative: mean score of the recent scored
    posts at or below NEGATIVE_LEVEL and at least |NEGATIVE_SHIFT| below the baseline mean.
    Posts without a sentiment score are ignored (too few scored posts: no finding)."""
    start = now - timedelta(days=recent_days)
    base_start = start - timedelta(days=baseline_days)
    found: list[Finding] = []
    for influencer_id, items in sorted(_by_influencer(posts).items()):
        scored = [p for p in items if p.sentiment_score is not None]
        recent = [p.sentiment_score for p in scored if start < p.published_at <= now]
        base = [p.sentiment_score for p in scored if base_start < p.published_at <= start]
        if len(recent) < MIN_RECENT_SCORED or len(base) < MIN_BASELINE_SCORED:
            continue
        recent_mean = statistics.fmean(r for r in recent if r is not None)
        base_mean = statistics.fmean(b for b in base if b is not None)
        shift = recent_mean - base_mean
        if recent_mean > NEGATIVE_LEVEL or shift > NEGATIVE_SHIFT:
            continue
        found.append(
            Finding(
                key=f"sentiment_negative:{influencer_id}:{now.date().isoformat()}",
                kind="sentiment_negative",
                influencer_id=influencer_id,
                post_id=None,
                metric="sentiment",
                value=round(recent_mean, 4),
                baseline=round(base_mean, 4),
                score=round(shift, 4),
                severity="high" if recent_mean <= 2 * NEGATIVE_LEVEL else "medium",
                detail=(
                    f"mean sentiment {recent_mean:+.2f} over the last {recent_days} days "
                    f"({len(recent)} scored posts) against {base_mean:+.2f} before"
                ),
                window_start=start,
                window_end=now,
            )
        )
    return found


def detect_anomalies(posts: Sequence[PostPoint], now: datetime) -> list[Finding]:
    """Every kind of anomaly, ordered by key (deterministic)."""
    found = engagement_anomalies(posts, now) + viral_posts(posts, now) + sentiment_turns(posts, now)
    return sorted(found, key=lambda f: f.key)


# -- best posting times ------------------------------------------------------------------------

MIN_PLATFORM_POSTS = 30  # fewer posts on a platform: not enough data to recommend times
MIN_SLOT_POSTS = 3  # a weekday x hour slot is ranked only with at least this many posts
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class SlotScore:
    weekday: int  # 0 = Monday, in the time zone asked for (UTC by default)
    hour: int  # 0-23, same zone
    posts: int
    lift: float  # mean over the slot's posts of (interactions + 1) / (account median + 1)


@dataclass(frozen=True)
class PostingTimes:
    platform: str
    posts: int
    enough_data: bool
    slots: list[SlotScore]  # ranked slots (>= MIN_SLOT_POSTS posts), best first
    by_weekday: list[SlotScore] = field(default_factory=list)  # hour = -1, best first
    by_hour: list[SlotScore] = field(default_factory=list)  # weekday = -1, best first


def _ranked(groups: Mapping[tuple[int, int], list[float]], min_posts: int) -> list[SlotScore]:
    slots = [
        SlotScore(weekday=w, hour=h, posts=len(v), lift=round(statistics.fmean(v), 4))
        for (w, h), v in groups.items()
        if len(v) >= min_posts
    ]
    return sorted(slots, key=lambda s: (-s.lift, -s.posts, s.weekday, s.hour))


def best_posting_times(
    posts: Sequence[PostPoint],
    platform: str,
    min_posts: int = MIN_PLATFORM_POSTS,
    min_slot_posts: int = MIN_SLOT_POSTS,
    tz: tzinfo = UTC,
) -> PostingTimes:
    """Weekday x hour slots (local time in `tz`) of one platform ranked by engagement lift.

    Each post is compared with its own account's median post, so big accounts do not decide
    the ranking alone: `lift = (interactions + 1) / (median interactions of the account + 1)`.
    A slot's score is the mean lift of its posts."""
    items = [p for p in posts if p.platform == platform]
    medians: dict[int, float] = {}
    per_account: dict[int, list[int]] = defaultdict(list)
    for p in items:
        per_account[p.account_id].append(p.interactions)
    for account, values in per_account.items():
        medians[account] = statistics.median(values)
    slots: dict[tuple[int, int], list[float]] = defaultdict(list)
    days: dict[tuple[int, int], list[float]] = defaultdict(list)
    hours: dict[tuple[int, int], list[float]] = defaultdict(list)
    for p in items:
        lift = (p.interactions + 1) / (medians[p.account_id] + 1)
        local = p.published_at.astimezone(tz)
        weekday, hour = local.weekday(), local.hour
        slots[(weekday, hour)].append(lift)
        days[(weekday, -1)].append(lift)
        hours[(-1, hour)].append(lift)
    enough = len(items) >= min_posts
    return PostingTimes(
        platform=platform,
        posts=len(items),
        enough_data=enough,
        slots=_ranked(slots, min_slot_posts) if enough else [],
        by_weekday=_ranked(days, min_slot_posts) if enough else [],
        by_hour=_ranked(hours, min_slot_posts) if enough else [],
    )
