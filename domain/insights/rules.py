"""Anomalies, best posting times and the daily digest (pure, deterministic).

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

from domain.analytics.engagement import FollowerSnapshot

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


# -- daily digest ------------------------------------------------------------------------------

SIGNIFICANT_CHANGE_PCT = 10.0  # a metric moving at least this much is a highlight or concern


@dataclass(frozen=True)
class DigestMetric:
    name: str
    value: float | None
    previous: float | None
    change_pct: float | None  # None when there is no previous figure or it is 0


@dataclass(frozen=True)
class Digest:
    period_start: datetime
    period_end: datetime
    summary: str
    metrics: list[DigestMetric]
    highlights: list[str]
    concerns: list[str]
    recommendations: list[str]

    def as_json(self) -> dict[str, object]:
        return {
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "summary": self.summary,
            "metrics": [
                {
                    "name": m.name,
                    "value": m.value,
                    "previous": m.previous,
                    "change_pct": m.change_pct,
                }
                for m in self.metrics
            ],
            "highlights": self.highlights,
            "concerns": self.concerns,
            "recommendations": self.recommendations,
        }


def change_pct(value: float | None, previous: float | None) -> float | None:
    """(value - previous) / |previous| x 100, rounded to 0.1; None without a usable previous."""
    if value is None or previous is None or previous == 0:
        return None
    return round((value - previous) / abs(previous) * 100, 1)


def total_followers(
    snapshots: Mapping[int, Sequence[FollowerSnapshot]], at: datetime
) -> int | None:
    """Sum over accounts of the latest snapshot at or before `at` (None: no account has one)."""
    total, seen = 0, False
    for snaps in snapshots.values():
        before = [s for s in snaps if s.at <= at]
        if before:
            total += max(before, key=lambda s: s.at).followers
            seen = True
    return total if seen else None


@dataclass(frozen=True)
class PeriodFigures:
    posts: int
    influencers: int
    interactions: int
    engagement_rate: float | None  # mean over posts with followers of interactions / followers
    sentiment: float | None  # mean over scored posts


def period_figures(posts: Sequence[PostPoint]) -> PeriodFigures:
    rates = [p.interactions / p.followers for p in posts if p.followers > 0]
    scores = [p.sentiment_score for p in posts if p.sentiment_score is not None]
    return PeriodFigures(
        posts=len(posts),
        influencers=len({p.influencer_id for p in posts}),
        interactions=sum(p.interactions for p in posts),
        engagement_rate=round(statistics.fmean(rates), 6) if rates else None,
        sentiment=round(statistics.fmean(scores), 4) if scores else None,
    )


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _fmt_pct(pct: float | None) -> str:
    return "no comparison" if pct is None else f"{pct:+.1f}%"


def build_digest(
    posts: Sequence[PostPoint],
    period_start: datetime,
    period_end: datetime,
    names: Mapping[int, str],
    anomalies: Sequence[Finding] = (),
    snapshots: Mapping[int, Sequence[FollowerSnapshot]] | None = None,
    posting_times: Sequence[PostingTimes] = (),
) -> Digest:
    """The digest of [period_start, period_end) against the period of the same length before.

    `posts` may hold more than both periods (they are filtered); `anomalies` are those found
    for this period; `snapshots` map account ids to their follower snapshots."""
    length = period_end - period_start
    prev_start = period_start - length
    current = [p for p in posts if period_start <= p.published_at < period_end]
    previous = [p for p in posts if prev_start <= p.published_at < period_start]
    cur, prev = period_figures(current), period_figures(previous)
    followers_now = total_followers(snapshots, period_end) if snapshots else None
    followers_before = total_followers(snapshots, period_start) if snapshots else None

    def metric(name: str, value: float | None, before: float | None) -> DigestMetric:
        return DigestMetric(name, value, before, change_pct(value, before))

    metrics = [
        metric("posts", cur.posts, prev.posts),
        metric("interactions", cur.interactions, prev.interactions),
        metric("engagement_rate", cur.engagement_rate, prev.engagement_rate),
        metric("sentiment", cur.sentiment, prev.sentiment),
        metric("followers", followers_now, followers_before),
    ]
    by_name = {m.name: m for m in metrics}
    name = lambda i: names.get(i, f"influencer {i}")  # noqa: E731

    highlights: list[str] = []
    concerns: list[str] = []
    recommendations: list[str] = []
    if current:
        top = max(current, key=lambda p: (p.interactions, -p.post_id))
        highlights.append(
            f"Top post: {name(top.influencer_id)} on {top.platform} with "
            f"{top.interactions} interactions."
        )
        per_influencer: dict[int, int] = defaultdict(int)
        for p in current:
            per_influencer[p.influencer_id] += p.interactions
        best = min(per_influencer, key=lambda i: (-per_influencer[i], i))
        if len(per_influencer) > 1:
            highlights.append(
                f"Most engaging influencer: {name(best)} with {per_influencer[best]} interactions."
            )
    else:
        concerns.append("No posts were published by tracked influencers in this period.")
    for m in metrics:
        if m.change_pct is None or m.name == "sentiment":
            continue
        label = m.name.replace("_", " ")
        if m.change_pct >= SIGNIFICANT_CHANGE_PCT:
            highlights.append(
                f"{label.capitalize()} up {m.change_pct:.1f}% on the previous period."
            )
        elif m.change_pct <= -SIGNIFICANT_CHANGE_PCT:
            concerns.append(
                f"{label.capitalize()} down {-m.change_pct:.1f}% on the previous period."
            )
    if cur.sentiment is not None and cur.sentiment <= NEGATIVE_LEVEL:
        concerns.append(f"Content sentiment is negative on average ({cur.sentiment:+.2f}).")
    for a in anomalies:
        if a.kind in ("engagement_spike", "viral_post"):
            highlights.append(f"{name(a.influencer_id)}: {a.kind.replace('_', ' ')}, {a.detail}.")
        else:
            concerns.append(f"{name(a.influencer_id)}: {a.kind.replace('_', ' ')}, {a.detail}.")
        if a.kind == "viral_post":
            recommendations.append(
                f"Follow up on {name(a.influencer_id)}'s viral post while attention is high."
            )
        elif a.kind == "engagement_drop":
            recommendations.append(
                f"Review {name(a.influencer_id)}'s recent content: "
                "engagement fell below its usual level."
            )
        elif a.kind == "sentiment_negative":
            recommendations.append(
                f"Read the comments on {name(a.influencer_id)}'s recent posts: "
                "sentiment turned negative."
            )
    posts_change = by_name["posts"].change_pct
    if posts_change is not None and posts_change <= -SIGNIFICANT_CHANGE_PCT:
        recommendations.append("Publishing slowed down: agree a steadier cadence with influencers.")
    for t in posting_times:
        if t.enough_data and t.slots:
            s = t.slots[0]
            recommendations.append(
                f"Best time to post on {t.platform}: {WEEKDAYS[s.weekday]} {s.hour:02d}:00 UTC "
                f"({s.lift:.2f}x the usual engagement over {s.posts} posts)."
            )

    day = period_start.date().isoformat()
    if current:
        summary = (
            f"{day}: {_n(cur.posts, 'post')} from {_n(cur.influencers, 'influencer')} earned "
            f"{cur.interactions} interactions ({_fmt_pct(by_name['interactions'].change_pct)} "
            f"vs the previous period)"
        )
    else:
        summary = f"{day}: no new posts from tracked influencers"
    issues = sum(1 for a in anomalies if a.kind in ("engagement_drop", "sentiment_negative"))
    summary += f"; {_n(issues, 'issue')} to review." if issues else "."
    return Digest(
        period_start=period_start,
        period_end=period_end,
        summary=summary,
        metrics=metrics,
        highlights=highlights,
        concerns=concerns,
        recommendations=recommendations,
    )
