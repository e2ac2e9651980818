"""Alert rules: input checks, metric values over a window, and the fire-once state machine
(pure). A rule fires once when its condition starts to hold and re-arms when it stops.
Formulas: docs/analytics.md, "Insights and alerts"."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.analytics.engagement import FollowerSnapshot
from domain.errors import FieldError
from domain.insights.digest import total_followers
from domain.insights.rules import PostPoint

METRICS = ("posts", "interactions", "engagement_rate", "sentiment", "followers")
CONDITIONS = ("above", "below", "change_pct")
CHANNELS = ("in_app", "webhook", "email")
ARMED, FIRED = "armed", "fired"
MIN_WINDOW_HOURS = 1
MAX_WINDOW_HOURS = 90 * 24
MAX_NAME = 100
MAX_RULES = 100  # per tenant


@dataclass(frozen=True)
class RuleSpec:
    name: str
    metric: str
    condition: str
    threshold: float
    window_hours: int
    channels: tuple[str, ...]
    influencer_id: int | None = None


def check_rule(spec: RuleSpec) -> list[FieldError]:
    """Every problem of a rule's input (field names as in the GraphQL input)."""
    errors: list[FieldError] = []
    if not spec.name.strip():
        errors.append(FieldError("name", "must not be blank"))
    elif len(spec.name.strip()) > MAX_NAME:
        errors.append(FieldError("name", f"must be at most {MAX_NAME} characters"))
    if spec.metric not in METRICS:
        errors.append(FieldError("metric", f"must be one of {', '.join(METRICS)}"))
    if spec.condition not in CONDITIONS:
        errors.append(FieldError("condition", f"must be one of {', '.join(CONDITIONS)}"))
    if not math.isfinite(spec.threshold):
        errors.append(FieldError("threshold", "must be a finite number"))
    elif spec.condition in ("above", "below"):
        if spec.metric == "sentiment" and not -1 <= spec.threshold <= 1:
            errors.append(FieldError("threshold", "sentiment thresholds are between -1 and 1"))
        elif spec.metric != "sentiment" and spec.threshold < 0:
            errors.append(FieldError("threshold", f"{spec.metric} cannot be negative"))
    elif spec.condition == "change_pct" and spec.threshold == 0:
        errors.append(
            FieldError("threshold", "a change in percent must be non-zero (+ rise, - fall)")
        )
    if not MIN_WINDOW_HOURS <= spec.window_hours <= MAX_WINDOW_HOURS:
        errors.append(
            FieldError("windowHours", f"must be between {MIN_WINDOW_HOURS} and {MAX_WINDOW_HOURS}")
        )
    if not spec.channels:
        errors.append(FieldError("channels", "at least one channel"))
    elif len(set(spec.channels)) != len(spec.channels):
        errors.append(FieldError("channels", "each channel at most once"))
    elif any(c not in CHANNELS for c in spec.channels):
        errors.append(FieldError("channels", f"channels are {', '.join(CHANNELS)}"))
    return errors


def metric_value(
    metric: str,
    posts: Sequence[PostPoint],
    start: datetime,
    end: datetime,
    snapshots: Mapping[int, Sequence[FollowerSnapshot]] | None = None,
) -> float | None:
    """The metric over posts published in [start, end); None when it is undefined there.

    posts: count; interactions: sum; engagement_rate: mean interactions / followers over posts
    whose account has followers; sentiment: mean score of the scored posts; followers: total of
    the accounts' latest snapshots at or before `end`."""
    if metric == "followers":
        total = total_followers(snapshots or {}, end)
        return float(total) if total is not None else None
    window = [p for p in posts if start <= p.published_at < end]
    if metric == "posts":
        return float(len(window))
    if metric == "interactions":
        return float(sum(p.interactions for p in window))
    if metric == "engagement_rate":
        rates = [p.interactions / p.followers for p in window if p.followers > 0]
        return statistics.fmean(rates) if rates else None
    if metric == "sentiment":
        scores = [p.sentiment_score for p in window if p.sentiment_score is not None]
        return statistics.fmean(scores) if scores else None
    raise ValueError(f"unknown metric {metric!r}")


@dataclass(frozen=True)
class Observation:
    value: float | None  # the metric over the window ending now
    previous: float | None  # over the window before it (change_pct only)
    change_pct: float | None
    holds: bool | None  # the condition; None when it cannot be judged (no data)


def observe(
    spec: RuleSpec,
    posts: Sequence[PostPoint],
    now: datetime,
    snapshots: Mapping[int, Sequence[FollowerSnapshot]] | None = None,
) -> Observation:
    """Judge the rule at `now`. `posts` and `snapshots` should already be the rule's scope
    (one influencer's, or the whole tenant's)."""
    window = timedelta(hours=spec.window_hours)
    value = metric_value(spec.metric, posts, now - window, now, snapshots)
    if spec.condition == "above":
        return Observation(value, None, None, None if value is None else value > spec.threshold)
    if spec.condition == "below":
        return Observation(value, None, None, None if value is None else value < spec.threshold)
    previous = metric_value(spec.metric, posts, now - 2 * window, now - window, snapshots)
    if spec.metric == "followers":
        total = total_followers(snapshots or {}, now - window)
        previous = float(total) if total is not None else None
    if value is None or previous is None or previous == 0:
        return Observation(value, previous, None, None)
    pct = (value - previous) / abs(previous) * 100
    holds = pct >= spec.threshold if spec.threshold > 0 else pct <= spec.threshold
    return Observation(value, previous, round(pct, 4), holds)


def next_state(state: str, holds: bool | None) -> tuple[str, bool]:
    """(new state, fire now?). Armed + condition holds: fire once and become `fired`; fired +
    condition no longer holds: re-arm; no data (None): unchanged."""
    if holds is None:
        return state, False
    if state == ARMED and holds:
        return FIRED, True
    if state == FIRED and not holds:
        return ARMED, False
    return state, False
