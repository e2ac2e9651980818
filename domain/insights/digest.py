"""The daily digest (pure, deterministic): the day's figures against the day before, the
highlights and concerns, the anomalies and best posting times of rules.py in prose.
Formulas: docs/analytics.md, "Insights and alerts".
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.analytics.engagement import FollowerSnapshot
from domain.insights.rules import NEGATIVE_LEVEL, WEEKDAYS, Finding, PostingTimes, PostPoint

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
