"""Trend detection and forecasting (pure, deterministic; no I/O). Rules: docs/analytics.md.

Pipeline (`detect_trends`): the posts of the lookback window (14 days ending at `now`) are
grouped into topics (hashtags, keywords, clusters of similar posts), each topic per platform and
over all platforms; each topic's hourly counts are compared with the topic's own baseline
(`burst_stats`), scored (`trend_score`), given a status (`trend_status`) and, for the best
trends, forecast 24 hours and 7 days ahead (`forecast_series`).

- Topics: hashtags (lower case); keywords (the post's stored `keywords`, or its top TF-IDF terms
  computed over the window's posts when NULL); clusters (TF-IDF + scikit-learn
  `MiniBatchKMeans`, labelled by the centroid's top terms): clusters.py.
- Burst statistics on `window_hours`-hour windows counted back from `now`: V0 (latest), V1, V2;
  baseline = every earlier window; median m and MAD d; scale s = max(1.4826 d, sqrt(max(m, 1)))
  (a Poisson floor: a flat or empty baseline does not make every post a burst);
  z = (V0 - m) / s; velocity = V0 - V1; acceleration = (V0 - V1) - (V1 - V2).
- Forecast: statsmodels ETS (additive errors; no trend, Holt linear, Holt damped; the lowest
  AICc wins) with its prediction interval; a flat fallback with a residual interval when the
  series is too short or constant: forecast.py.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from domain.trends.clusters import cluster_texts, post_keywords
from domain.trends.forecast import Forecast, forecast_series

TopicKind = Literal["hashtag", "keyword", "cluster"]
Status = Literal["emerging", "rising", "peaking", "declining", "stable"]
ALL_PLATFORMS = "all"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MAX_KEY_LENGTH = 200  # longer hashtags/terms are not topics (the stored key is 200 long)
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation

FORMULA_VERSION = "trend-v1"
SCORE_WEIGHTS: dict[str, float] = {
    "burst": 0.35,
    "volume": 0.20,
    "recency": 0.20,
    "engagement": 0.15,
    "sentiment": 0.10,
}


@dataclass(frozen=True)
class TrendConfig:
    lookback_hours: int = 14 * 24  # the series the baseline is taken from
    window_hours: int = 6  # burst windows V0, V1, V2 ...
    activity_hours: int = 24  # volume, engagement, sentiment, influencers are of these hours
    peak_hours: int = 48  # a burst this recent can still be "peaking" or "declining"
    rise_z: float = 2.0  # z from which a topic is above its baseline (rising/peaking)
    burst_z: float = 3.0  # z from which a new topic is "emerging"
    new_topic_mean: float = 0.5  # baseline mean (posts per window) below which a topic is new
    peak_share: float = 0.75  # V0 at least this share of the recent peak window: "peaking"
    min_volume: int = 3  # posts in a window for it to count as a burst at all
    min_topic_posts: int = 3  # topics with fewer posts in the lookback are not evaluated
    recency_half_life_hours: float = 12.0
    keywords_per_post: int = 5  # computed keywords per post when `keywords` is NULL
    max_clusters: int = 20
    min_cluster_posts: int = 10  # fewer posts: no clustering
    cluster_label_terms: int = 3
    series_hours: int = 7 * 24  # stored hourly points per trend
    forecast_top_n: int = 10  # forecasts for this many non-stable trends (highest score)
    forecast_level: float = 0.90  # prediction interval coverage
    max_influencers: int = 10


@dataclass(frozen=True)
class TrendPost:
    """What trend detection needs of a post (NULL analysis columns are None)."""

    id: int
    influencer_id: int
    platform: str
    published_at: datetime
    text: str = ""
    hashtags: tuple[str, ...] = ()
    keywords: tuple[str, ...] | None = None
    engagement: int = 0  # likes + comments + shares
    sentiment_score: float | None = None  # [-1, 1]


@dataclass(frozen=True)
class BurstStats:
    current: float  # V0: posts in the latest window
    previous: float  # V1
    baseline_median: float  # m
    baseline_mad: float  # d
    scale: float  # s
    z: float
    velocity: float  # V0 - V1 (posts per window)
    acceleration: float  # (V0 - V1) - (V1 - V2)
    peak: float  # the largest window volume within `peak_hours`
    peak_z: float  # its z
    baseline_mean: float


@dataclass(frozen=True)
class ScoreComponent:
    name: str
    value: float  # 0-100
    weight: float
    contribution: float  # weight * value; the contributions sum to the score
    raw: float | None


@dataclass(frozen=True)
class InfluencerContribution:
    influencer_id: int
    posts: int
    engagement: int
    contribution: float  # mean of the influencer's share of posts and share of engagement


@dataclass(frozen=True)
class TrendResult:
    kind: TopicKind
    key: str
    label: str
    platform: str  # a platform or "all"
    status: Status
    score: float
    breakdown: list[ScoreComponent]
    stats: BurstStats
    volume: int  # posts in the last `activity_hours`
    engagement: int  # their summed engagement
    sentiment: float | None  # their mean sentiment score; None: none analysed
    sentiment_posts: int  # posts the sentiment is the mean of
    first_seen: datetime  # oldest post of the topic in the lookback
    last_seen: datetime  # newest
    series_start: datetime  # first hour of `series`
    series: list[int]  # hourly counts over the last `series_hours`
    influencers: list[InfluencerContribution]
    post_ids: tuple[int, ...] | None  # cluster members (other kinds are found by filter)
    forecasts: list[Forecast] = field(default_factory=list)


# -- time series -------------------------------------------------------------------------------


def hour_floor(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def hourly_counts(times: Iterable[datetime], start: datetime, hours: int) -> np.ndarray:
    """Posts per hour in [start + i h, start + (i+1) h) for i < hours; others are ignored."""
    counts = np.zeros(hours, dtype=np.int64)
    for t in times:
        i = math.floor((t - start) / HOUR)
        if 0 <= i < hours:
            counts[i] += 1
    return counts


def windows(counts: Sequence[float] | np.ndarray, size: int) -> np.ndarray:
    """Sums of consecutive `size`-bucket windows counted back from the end (oldest first);
    leading buckets that do not fill a window are dropped."""
    arr = np.asarray(counts, dtype=float)
    n = (len(arr) // size) * size
    if n == 0:
        return np.zeros(0)
    return arr[len(arr) - n :].reshape(-1, size).sum(axis=1)


def burst_stats(
    counts: Sequence[float] | np.ndarray, window: int = 6, peak_windows: int = 8
) -> BurstStats:
    """Burst statistics of the latest `window` buckets of `counts` against the earlier ones."""
    return burst_stats_many(np.asarray(counts, dtype=float)[None, :], window, peak_windows)[0]


def burst_stats_many(
    counts: np.ndarray, window: int = 6, peak_windows: int = 8
) -> list[BurstStats]:
    """`burst_stats` of every row of a (topics x buckets) matrix, vectorised."""
    rows, buckets = counts.shape
    n = (buckets // window) * window
    if n == 0:
        w = np.zeros((rows, 1))
    else:
        w = counts[:, buckets - n :].astype(float).reshape(rows, -1, window).sum(axis=2)
    k = w.shape[1]
    v0 = w[:, -1]
    v1 = w[:, -2] if k >= 2 else np.zeros(rows)
    v2 = w[:, -3] if k >= 3 else np.zeros(rows)
    base = w[:, :-1] if k >= 2 else np.zeros((rows, 1))
    median = np.median(base, axis=1)
    mad = np.median(np.abs(base - median[:, None]), axis=1)
    scale = np.maximum(MAD_TO_SIGMA * mad, np.sqrt(np.maximum(median, 1.0)))
    peak = w[:, -peak_windows:].max(axis=1)
    mean = base.mean(axis=1)
    return [
        BurstStats(
            current=float(v0[i]),
            previous=float(v1[i]),
            baseline_median=float(median[i]),
            baseline_mad=float(mad[i]),
            scale=float(scale[i]),
            z=float((v0[i] - median[i]) / scale[i]),
            velocity=float(v0[i] - v1[i]),
            acceleration=float((v0[i] - v1[i]) - (v1[i] - v2[i])),
            peak=float(peak[i]),
            peak_z=float((peak[i] - median[i]) / scale[i]),
            baseline_mean=float(mean[i]),
        )
        for i in range(rows)
    ]


def trend_status(stats: BurstStats, config: TrendConfig = TrendConfig()) -> Status:
    """emerging / rising / peaking / declining / stable (docs/analytics.md, "Status rules").

    1. above baseline (z >= rise_z, V0 >= min_volume) and growing (velocity > 0): emerging when
       the topic is new (baseline mean < new_topic_mean) and z >= burst_z, else rising;
    2. above baseline, not growing: peaking while V0 >= peak_share x the recent peak window,
       else declining;
    3. back near baseline after a burst within `peak_hours` (peak_z >= rise_z): declining;
    4. otherwise stable.
    """
    above = stats.z >= config.rise_z and stats.current >= config.min_volume
    if above and stats.velocity > 0:
        if stats.baseline_mean < config.new_topic_mean and stats.z >= config.burst_z:
            return "emerging"
        return "rising"
    if above:
        return "peaking" if stats.current >= config.peak_share * stats.peak else "declining"
    if stats.peak_z >= config.rise_z and stats.peak >= config.min_volume:
        return "declining"
    return "stable"


# -- score -------------------------------------------------------------------------------------


def _clamp(value: float) -> float:
    return min(100.0, max(0.0, value))


def trend_score(
    stats: BurstStats,
    volume: int,
    hours_since_last_post: float,
    mean_engagement: float | None,
    reference_engagement: float | None,
    sentiment: float | None,
    config: TrendConfig = TrendConfig(),
) -> tuple[float, list[ScoreComponent]]:
    """Score 0-100 = sum(weight x value), values 0-100:

    burst       0.35  100 x z / 6, clamped (z >= 6 -> 100; at or below baseline -> 0)
    volume      0.20  100 x log10(1 + posts in the activity window) / 2 (100 posts -> 100)
    recency     0.20  100 x 0.5 ^ (hours since the newest post / half-life 12 h)
    engagement  0.15  50 + 50 tanh(log2(mean engagement / tenant's median engagement)):
                      as engaging as usual -> 50, twice -> 88; unknown -> 50
    sentiment   0.10  50 x (mean sentiment + 1); unknown -> 50
    """
    lift: float | None = None
    if mean_engagement is not None and reference_engagement is not None:
        lift = (mean_engagement + 1.0) / (reference_engagement + 1.0)
    parts: list[tuple[str, float, float | None]] = [
        ("burst", _clamp(100.0 * stats.z / 6.0), stats.z),
        ("volume", _clamp(100.0 * math.log10(1 + volume) / 2.0), float(volume)),
        (
            "recency",
            100.0 * 0.5 ** (max(0.0, hours_since_last_post) / config.recency_half_life_hours),
            hours_since_last_post,
        ),
        (
            "engagement",
            50.0 if lift is None else _clamp(50.0 + 50.0 * math.tanh(math.log2(lift))),
            lift,
        ),
        (
            "sentiment",
            50.0 if sentiment is None else _clamp(50.0 * (max(-1.0, min(1.0, sentiment)) + 1.0)),
            sentiment,
        ),
    ]
    breakdown = [
        ScoreComponent(
            name=name,
            value=value,
            weight=SCORE_WEIGHTS[name],
            contribution=SCORE_WEIGHTS[name] * value,
            raw=raw,
        )
        for name, value, raw in parts
    ]
    return _clamp(math.fsum(c.contribution for c in breakdown)), breakdown


# -- forecast ----------------------------------------------------------------------------------


def trend_forecasts(
    hourly: np.ndarray, end: datetime, config: TrendConfig = TrendConfig()
) -> list[Forecast]:
    """24 h ahead on the hourly series of the last `series_hours`, and 7 days ahead on daily
    sums of the whole lookback (days counted back from `end`); forecasts start at `end`."""
    recent = hourly[-config.series_hours :]
    daily = windows(hourly, 24)
    return [
        forecast_series(recent, end, HOUR, 24, config.forecast_level, "24h"),
        forecast_series(daily, end, DAY, 7, config.forecast_level, "7d"),
    ]


# -- topics ------------------------------------------------------------------------------------


def topics_of(
    posts: Sequence[TrendPost], config: TrendConfig = TrendConfig()
) -> dict[tuple[TopicKind, str], tuple[str, list[int]]]:
    """(kind, key) -> (label, indices of its posts) for hashtags, keywords and clusters."""
    from domain.analytics.keywords import extract_hashtags

    topics: dict[tuple[TopicKind, str], tuple[str, list[int]]] = {}

    def add(kind: TopicKind, key: str, label: str, index: int) -> None:
        if len(key) > MAX_KEY_LENGTH:
            return
        entry = topics.get((kind, key))
        if entry is None:
            topics[(kind, key)] = (label, [index])
        elif not entry[1] or entry[1][-1] != index:
            entry[1].append(index)

    missing = [i for i, p in enumerate(posts) if p.keywords is None]
    computed = post_keywords([posts[i].text for i in missing], config.keywords_per_post)
    keywords: dict[int, tuple[str, ...]] = dict(zip(missing, computed, strict=True))
    for i, post in enumerate(posts):
        tags = post.hashtags or tuple(extract_hashtags(post.text))
        for tag in sorted({t.lstrip("#").lower() for t in tags if t.strip("#")}):
            add("hashtag", tag, f"#{tag}", i)
        words = post.keywords if post.keywords is not None else keywords.get(i, ())
        for word in sorted({w.lower() for w in words if w}):
            add("keyword", word, word, i)
    if len(posts) >= config.min_cluster_posts:
        for cluster in cluster_texts(
            [p.text for p in posts],
            max_clusters=config.max_clusters,
            label_terms=config.cluster_label_terms,
            min_size=config.min_topic_posts,
        ):
            topics[("cluster", cluster.key)] = (cluster.label, list(cluster.members))
    return topics


def influencer_contributions(
    posts: Sequence[TrendPost], limit: int = 10
) -> list[InfluencerContribution]:
    """Influencers ranked by contribution = (share of the posts + share of the engagement) / 2
    (share of the posts alone when there is no engagement). Ties: more posts, lower id."""
    return _contributions(
        np.array([p.influencer_id for p in posts], dtype=np.int64),
        np.array([max(0, p.engagement) for p in posts], dtype=np.int64),
        limit,
    )


def _contributions(
    influencer_ids: np.ndarray, engagement: np.ndarray, limit: int
) -> list[InfluencerContribution]:
    if len(influencer_ids) == 0:
        return []
    ids, inverse = np.unique(influencer_ids, return_inverse=True)
    counts = np.bincount(inverse)
    eng = np.bincount(inverse, weights=np.maximum(engagement, 0))
    post_share = counts / counts.sum()
    total_eng = eng.sum()
    eng_share = eng / total_eng if total_eng > 0 else post_share
    contribution = (post_share + eng_share) / 2
    order = np.lexsort((ids, -counts, -np.round(contribution, 9)))[:limit]
    return [
        InfluencerContribution(
            int(ids[i]), int(counts[i]), int(np.rint(eng[i])), float(contribution[i])
        )
        for i in order
    ]


# -- the whole pass ----------------------------------------------------------------------------


def detect_trends(
    posts: Sequence[TrendPost],
    now: datetime,
    config: TrendConfig = TrendConfig(),
    tracked: AbstractSet[tuple[str, str, str]] = frozenset(),
) -> list[TrendResult]:
    """The trending topics (per platform and over all platforms, with at least
    `min_topic_posts` posts in the lookback), highest score first. Stable topics are returned
    only when `tracked` holds their (kind, key, platform) (stored trends that may have calmed
    down). Forecasts are attached to the `forecast_top_n` highest-scored non-stable results."""
    end = hour_floor(now) + HOUR  # the current (partial) hour is the last bucket
    start = end - HOUR * config.lookback_hours
    window_posts = [p for p in posts if start <= p.published_at < end]
    if not window_posts:
        return []
    n = len(window_posts)
    engagement = np.fromiter((p.engagement for p in window_posts), dtype=np.int64, count=n)
    influencer = np.fromiter((p.influencer_id for p in window_posts), dtype=np.int64, count=n)
    sentiment = np.fromiter(
        (np.nan if p.sentiment_score is None else p.sentiment_score for p in window_posts),
        dtype=float,
        count=n,
    )
    seconds = np.fromiter(
        ((p.published_at - start).total_seconds() for p in window_posts), dtype=float, count=n
    )
    hours = np.floor(seconds / 3600).astype(np.int64)
    post_ids = np.fromiter((p.id for p in window_posts), dtype=np.int64, count=n)
    platforms = [p.platform for p in window_posts]
    reference = float(np.median(engagement))
    activity_hour = config.lookback_hours - config.activity_hours
    series_start = end - HOUR * config.series_hours
    peak_windows = max(1, config.peak_hours // config.window_hours)
    groups: list[tuple[TopicKind, str, str, str, np.ndarray]] = []
    for (kind, key), (label, members) in topics_of(window_posts, config).items():
        if len(members) < config.min_topic_posts:
            continue
        by_platform: dict[str, list[int]] = defaultdict(list)
        for i in members:
            by_platform[platforms[i]].append(i)
        for platform, members_of in [(ALL_PLATFORMS, members), *sorted(by_platform.items())]:
            if len(members_of) >= config.min_topic_posts:
                groups.append((kind, key, label, platform, np.asarray(members_of, dtype=np.int64)))
    if not groups:
        return []
    # every group's hourly counts in one matrix, their statistics vectorised
    offsets = np.concatenate(
        [np.full(len(g[4]), row, dtype=np.int64) for row, g in enumerate(groups)]
    )
    cells = offsets * config.lookback_hours + hours[np.concatenate([g[4] for g in groups])]
    matrix = np.bincount(cells, minlength=len(groups) * config.lookback_hours).reshape(
        len(groups), config.lookback_hours
    )
    all_stats = burst_stats_many(matrix, config.window_hours, peak_windows)
    results: list[TrendResult] = []
    hourly_by_result: list[np.ndarray] = []
    for (kind, key, label, platform, idx), hourly, stats in zip(
        groups, matrix, all_stats, strict=True
    ):
        status = trend_status(stats, config)
        if status == "stable" and (kind, key, platform) not in tracked:
            continue
        active = idx[hours[idx] >= activity_hour]
        known = sentiment[active]
        known = known[~np.isnan(known)]
        mean_sentiment = float(known.mean()) if len(known) else None
        last_seen = max(window_posts[i].published_at for i in idx)
        score, breakdown = trend_score(
            stats,
            volume=len(active),
            hours_since_last_post=(now - last_seen) / HOUR,
            mean_engagement=float(engagement[active].mean()) if len(active) else None,
            reference_engagement=reference,
            sentiment=mean_sentiment,
            config=config,
        )
        drivers = active if len(active) else idx
        results.append(
            TrendResult(
                kind=kind,
                key=key,
                label=label,
                platform=platform,
                status=status,
                score=score,
                breakdown=breakdown,
                stats=stats,
                volume=len(active),
                engagement=int(engagement[active].sum()),
                sentiment=mean_sentiment,
                sentiment_posts=len(known),
                first_seen=min(window_posts[i].published_at for i in idx),
                last_seen=last_seen,
                series_start=series_start,
                series=hourly[-config.series_hours :].tolist(),
                influencers=_contributions(
                    influencer[drivers], engagement[drivers], config.max_influencers
                ),
                post_ids=tuple(sorted(post_ids[idx].tolist())) if kind == "cluster" else None,
            )
        )
        hourly_by_result.append(hourly)
    order = sorted(
        range(len(results)),
        key=lambda i: (-results[i].score, results[i].kind, results[i].key, results[i].platform),
    )
    out: list[TrendResult] = []
    forecasted = 0
    for i in order:
        result = results[i]
        if result.status != "stable" and forecasted < config.forecast_top_n:
            forecasted += 1
            result = _with_forecasts(result, trend_forecasts(hourly_by_result[i], end, config))
        out.append(result)
    return out


def _with_forecasts(result: TrendResult, forecasts: list[Forecast]) -> TrendResult:
    from dataclasses import replace

    return replace(result, forecasts=forecasts)
