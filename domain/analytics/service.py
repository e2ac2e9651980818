"""Analytics I/O. Runs inside the caller's tenant transaction; never commits.

The CPU work (language, sentiment, keywords, scores) is the pure code of domain/analytics;
this module reads its inputs and writes its outputs in bulk (one statement per batch).
"""

from __future__ import annotations

import asyncio
import builtins
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from domain import events
from domain.analytics.engagement import FollowerSnapshot, PostStats
from domain.analytics.figures import (
    AccountData,
    InfluencerFigures,
    authenticity_json,
    breakdown_json,
    influencer_figures,
    inputs_json,
)
from domain.analytics.models import InfluencerScore, TenantTotals
from domain.analytics.scoring import FORMULA_VERSION
from domain.analytics.text import TextAnalysis, analyze_texts
from domain.influencers.models import Influencer, InfluencerAccount
from domain.posts.models import Comment, Post
from tenants import outbox
from tenants.tx import current_tx

# The Dramatiq actors that follow new or removed data (jobs/actors.py declares them with these
# names): senders go through the outbox and never import the actors.
ANALYTICS_QUEUE = "analytics"
RECOUNT_TOTALS = outbox.ActorRef("analytics.recount_totals", ANALYTICS_QUEUE)
ANALYZE_POSTS = outbox.ActorRef("analytics.analyze_posts", ANALYTICS_QUEUE)
# Sent by the ARQ crons for every tenant (jobs/analytics.py, jobs/insights.py, jobs/trends.py).
COMPUTE_SCORES = outbox.ActorRef("analytics.compute_scores", ANALYTICS_QUEUE)
DETECT_TRENDS = outbox.ActorRef("analytics.detect_trends", ANALYTICS_QUEUE)
DAILY_DIGEST = outbox.ActorRef("analytics.daily_digest", ANALYTICS_QUEUE)
DETECT_ANOMALIES = outbox.ActorRef("analytics.detect_anomalies", ANALYTICS_QUEUE)
EVALUATE_ALERTS = outbox.ActorRef("analytics.evaluate_alerts", ANALYTICS_QUEUE)

ANALYSIS_BATCH = 1000  # rows analysed and written per transaction
POSTS_PER_ACCOUNT = 100  # the recent posts an account's figures are computed from
SNAPSHOT_DAYS = 180  # follower history read for growth (90 days) and jumps
COMMENTS_PER_ACCOUNT = 200  # recent comments read for the duplication signal
HISTORY_LIMIT = 1000  # points per influencer served by scoreHistory

Granularity = Literal["hour", "day", "week", "month"]

_PENDING = {
    "post": "SELECT id, influencer_id, text FROM post WHERE analyzed_at IS NULL "
    "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    "comment": "SELECT id, 0::bigint AS influencer_id, text FROM comment WHERE analyzed_at IS NULL "
    "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
}
_STORE_POSTS = """
UPDATE post p SET language = v.language, sentiment = v.sentiment, sentiment_score = v.score,
    sentiment_confidence = v.confidence, keywords = string_to_array(v.keywords, ' '),
    analyzed_at = $7
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::text[])
    AS v(id, language, sentiment, score, confidence, keywords)
WHERE p.id = v.id AND p.analyzed_at IS NULL
"""
_STORE_COMMENTS = """
UPDATE comment c SET language = v.language, sentiment = v.sentiment, sentiment_score = v.score,
    sentiment_confidence = v.confidence, analyzed_at = $6
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[], $5::float8[])
    AS v(id, language, sentiment, score, confidence)
WHERE c.id = v.id AND c.analyzed_at IS NULL
"""

_ACCOUNT_POSTS = """
SELECT account_id, published_at, likes, comments, shares, views, sentiment_score FROM (
    SELECT p.*, row_number() OVER (PARTITION BY account_id ORDER BY published_at DESC, id DESC)
        AS rn
    FROM post p WHERE account_id = ANY($1::bigint[])
) ranked WHERE rn <= $2 ORDER BY account_id, published_at, id
"""
_PEER_RATES = """
SELECT a.id, a.followers, avg(p.likes + p.comments + p.shares)::float8 AS mean_interactions
FROM influencer_account a
JOIN LATERAL (
    SELECT likes, comments, shares FROM post WHERE account_id = a.id
    ORDER BY published_at DESC LIMIT $1
) p ON true
WHERE a.followers > 0
GROUP BY a.id, a.followers
"""
_SNAPSHOTS = """
SELECT account_id, followers, taken_at FROM follower_snapshot
WHERE account_id = ANY($1::bigint[]) AND taken_at >= $2 AND taken_at <= $3
ORDER BY account_id, taken_at, id
"""
_COMMENTS = """
SELECT account_id, text FROM (
    SELECT p.account_id, c.text,
        row_number() OVER (PARTITION BY p.account_id ORDER BY c.id DESC) AS rn
    FROM comment c JOIN post p ON p.id = c.post_id WHERE p.account_id = ANY($1::bigint[])
) ranked WHERE rn <= $2
"""
_SCORE_COLUMNS = (
    "influencer_id",
    "computed_at",
    "formula",
    "influence_score",
    "authenticity_score",
    "followers",
    "posts",
    "engagement_rate_by_followers",
    "engagement_rate_by_views",
    "growth_7d",
    "growth_30d",
    "growth_90d",
    "mean_sentiment",
    "breakdown",
    "inputs",
    "authenticity",
)
_LATEST_SCORES = """
SELECT DISTINCT ON (influencer_id) * FROM influencer_score
WHERE influencer_id = ANY($1::bigint[]) ORDER BY influencer_id, computed_at DESC, id DESC
"""


@dataclass
class AnalysisResult:
    posts: int = 0
    comments: int = 0
    influencer_ids: set[int] = field(default_factory=set)  # of the posts analysed


@dataclass(frozen=True)
class PostScope:
    """Which posts an aggregate covers. Every condition is ANDed; a new scope (a trend's
    posts, say) is one more optional attribute and one more clause in `where`."""

    since: datetime
    until: datetime
    influencer_id: int | None = None
    post_ids: tuple[int, ...] | None = None  # e.g. a trend's posts (domain/trends/service.py)

    def where(self, first_param: int = 1) -> tuple[str, list[Any]]:
        """SQL conditions on `post` (alias p) and their parameters, numbered from
        `first_param`. Only analysed posts count."""
        clauses = ["p.analyzed_at IS NOT NULL"]
        params: list[Any] = []

        def add(condition: str, value: Any) -> None:
            params.append(value)
            clauses.append(condition.replace("?", f"${first_param + len(params) - 1}"))

        add("p.published_at >= ?", self.since)
        add("p.published_at < ?", self.until)
        if self.influencer_id is not None:
            add("p.influencer_id = ?", self.influencer_id)
        if self.post_ids is not None:
            add("p.id = ANY(?::bigint[])", list(self.post_ids))
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class SentimentBucket:
    start: datetime
    positive: int
    neutral: int
    negative: int
    mean_score: float | None


@dataclass(frozen=True)
class TermSentiment:
    term: str
    mean_score: float
    posts: int


@dataclass(frozen=True)
class SentimentSummary:
    posts: int  # analysed posts with a sentiment in scope
    positive: int
    neutral: int
    negative: int
    mean_score: float | None
    timeline: list[SentimentBucket]
    top_positive: list[TermSentiment]
    top_negative: list[TermSentiment]
    languages: list[tuple[str, int]]  # language -> analysed posts (any language), most first
    top_keywords: list[TermSentiment] = field(default_factory=list)  # most posts first
    top_hashtags: list[TermSentiment] = field(default_factory=list)  # most posts first


class AnalyticsService:
    async def recount_totals(self) -> TenantTotals:
        return await TenantTotals.create(
            influencers=await Influencer.all().count(),
            accounts=await InfluencerAccount.all().count(),
            posts=await Post.all().count(),
            comments=await Comment.all().count(),
            computed_at=datetime.now(UTC),
        )

    async def latest_totals(self) -> TenantTotals | None:
        return await TenantTotals.all().order_by("-computed_at", "-id").first()

    # --- the analysis pass ----------------------------------------------------------------

    async def analyze_batch(self, table: Literal["post", "comment"], limit: int) -> AnalysisResult:
        """Analyse up to `limit` not yet analysed rows of `table` and store the results (one
        UPDATE). The rows are locked (SKIP LOCKED: concurrent passes take other rows) until the
        caller's transaction ends; rows analysed meanwhile by another pass are left alone."""
        async with current_tx().raw_connection() as conn:
            rows = await conn.fetch(_PENDING[table], limit)
            if not rows:
                return AnalysisResult()
            texts = [r["text"] or "" for r in rows]
            found: list[TextAnalysis] = await asyncio.to_thread(
                analyze_texts, texts, keywords=table == "post"
            )
            ids = [r["id"] for r in rows]
            columns: list[list[Any]] = [
                ids,
                [a.language for a in found],
                [a.sentiment for a in found],
                [a.score for a in found],
                [a.confidence for a in found],
            ]
            now = datetime.now(UTC)
            if table == "post":
                columns.append([" ".join(a.keywords or ()) for a in found])
                await conn.execute(_STORE_POSTS, *columns, now)
                return AnalysisResult(
                    posts=len(rows), influencer_ids={r["influencer_id"] for r in rows}
                )
            await conn.execute(_STORE_COMMENTS, *columns, now)
            return AnalysisResult(comments=len(rows))

    # --- metrics and scores ---------------------------------------------------------------

    async def influencer_ids(self, among: Sequence[int] | None = None) -> builtins.list[int]:
        """The tenant's influencer ids (those of `among` that exist), ascending."""
        query = Influencer.all()
        if among is not None:
            query = query.filter(id__in=builtins.list(among))
        return [int(i) for i in await query.order_by("id").values_list("id", flat=True)]  # type: ignore[call-overload]

    async def account_data(
        self, influencer_ids: Sequence[int], now: datetime
    ) -> tuple[dict[int, builtins.list[AccountData]], dict[str, builtins.list[tuple[int, float]]]]:
        """Each influencer's accounts with their recent posts, follower snapshots and
        comments, and every account's engagement rate per size band (the peers)."""
        from domain.analytics.authenticity import size_band

        accounts = await InfluencerAccount.filter(influencer_id__in=builtins.list(influencer_ids))
        ids = [a.id for a in accounts]
        posts: dict[int, list[Any]] = defaultdict(list)
        snaps: dict[int, list[FollowerSnapshot]] = defaultdict(list)
        comments: dict[int, list[str]] = defaultdict(list)
        peers: dict[str, list[tuple[int, float]]] = {}
        async with current_tx().raw_connection() as conn:
            for r in await conn.fetch(_ACCOUNT_POSTS, ids, POSTS_PER_ACCOUNT):
                posts[r["account_id"]].append(r)
            for r in await conn.fetch(_SNAPSHOTS, ids, now - timedelta(days=SNAPSHOT_DAYS), now):
                snaps[r["account_id"]].append(FollowerSnapshot(r["taken_at"], r["followers"]))
            for r in await conn.fetch(_COMMENTS, ids, COMMENTS_PER_ACCOUNT):
                comments[r["account_id"]].append(r["text"])
            for r in await conn.fetch(_PEER_RATES, POSTS_PER_ACCOUNT):
                band = size_band(r["followers"])
                peers.setdefault(band, []).append(
                    (r["id"], r["mean_interactions"] / r["followers"])
                )
        out: dict[int, builtins.list[AccountData]] = {i: [] for i in influencer_ids}
        for a in accounts:
            rows = posts.get(a.id, [])
            out[a.influencer_id].append(  # type: ignore[attr-defined]
                AccountData(
                    account_id=a.id,
                    platform=a.platform,
                    handle=a.handle,
                    followers=a.followers,
                    posts=[
                        PostStats(r["likes"], r["comments"], r["shares"], r["views"] or None)
                        for r in rows
                    ],
                    post_times=[r["published_at"] for r in rows],
                    sentiments=[
                        r["sentiment_score"] for r in rows if r["sentiment_score"] is not None
                    ],
                    snapshots=snaps.get(a.id, []),
                    comments=comments.get(a.id, []),
                )
            )
        return out, peers

    async def compute_scores(
        self, influencer_ids: Sequence[int] | None = None, now: datetime | None = None
    ) -> builtins.list[InfluencerFigures]:
        """Compute and store (one COPY) the figures of the given influencers (all when None)
        at `now`, and emit `score_updated` for each after commit."""
        now = now or datetime.now(UTC)
        wanted = await self.influencer_ids(influencer_ids)
        if not wanted:
            return []
        data, peers = await self.account_data(wanted, now)
        figures = await asyncio.to_thread(
            lambda: [influencer_figures(i, data[i], now, peers) for i in wanted]
        )
        records = [_score_record(f) for f in figures]
        async with current_tx().raw_connection() as conn:
            await conn.copy_records_to_table(
                "influencer_score", records=records, columns=_SCORE_COLUMNS
            )
        for f in figures:
            outbox.publish(
                events.SCORE_UPDATED,
                {
                    "influencer_id": f.influencer_id,
                    "score": round(f.influence.score, 4),
                    "computed_at": f.computed_at.isoformat(),
                },
            )
        return figures

    # --- reads (GraphQL) ------------------------------------------------------------------

    async def latest_scores(self, influencer_ids: Sequence[int]) -> dict[int, InfluencerScore]:
        rows = await current_tx().conn.execute_query_dict(
            _LATEST_SCORES, [builtins.list(influencer_ids)]
        )
        return {r["influencer_id"]: _score_from_row(r) for r in rows}

    async def score_history(
        self, influencer_ids: Sequence[int], window: tuple[datetime | None, datetime | None]
    ) -> dict[int, builtins.list[InfluencerScore]]:
        """Each influencer's computations in [since, until), oldest first."""
        since, until = window
        query = InfluencerScore.filter(influencer_id__in=builtins.list(influencer_ids))
        if since is not None:
            query = query.filter(computed_at__gte=since)
        if until is not None:
            query = query.filter(computed_at__lt=until)
        out: dict[int, builtins.list[InfluencerScore]] = {i: [] for i in influencer_ids}
        for row in await query.order_by("influencer_id", "computed_at", "id").limit(
            HISTORY_LIMIT * max(1, len(influencer_ids))
        ):
            bucket = out[row.influencer_id]
            if len(bucket) < HISTORY_LIMIT:
                bucket.append(row)
        return out

    async def sentiment_summary(
        self, scope: PostScope, granularity: Granularity, top_n: int = 10, min_support: int = 3
    ) -> SentimentSummary:
        """Shares, timeline, top positive/negative stored keywords and languages of the
        analysed posts in `scope` (one statement each; the aggregation runs in PostgreSQL).
        A keyword's polarity is the mean sentiment score of the posts it was extracted from,
        among keywords of at least `min_support` posts."""
        where, params = scope.where(first_param=1)
        n = len(params)
        conn = current_tx().conn
        totals = await conn.execute_query_dict(
            f"""SELECT sentiment, count(*) AS n, avg(sentiment_score) AS mean
            FROM post p WHERE {where} AND p.sentiment IS NOT NULL GROUP BY sentiment""",
            params,
        )
        timeline = await conn.execute_query_dict(
            f"""SELECT date_trunc(${n + 1}, p.published_at, 'UTC') AS bucket,
                count(*) FILTER (WHERE sentiment = 'positive') AS positive,
                count(*) FILTER (WHERE sentiment = 'neutral') AS neutral,
                count(*) FILTER (WHERE sentiment = 'negative') AS negative,
                avg(sentiment_score) AS mean
            FROM post p WHERE {where} AND p.sentiment IS NOT NULL
            GROUP BY bucket ORDER BY bucket""",
            [*params, granularity],
        )
        terms = await conn.execute_query_dict(
            f"""SELECT kw AS term, avg(p.sentiment_score) AS mean, count(*) AS posts
            FROM post p CROSS JOIN LATERAL unnest(p.keywords) AS kw
            WHERE {where} AND p.sentiment_score IS NOT NULL
            GROUP BY kw HAVING count(*) >= ${n + 1}""",
            [*params, min_support],
        )
        languages = await conn.execute_query_dict(
            f"""SELECT p.language, count(*) AS n FROM post p WHERE {where}
            GROUP BY p.language ORDER BY n DESC, p.language""",
            params,
        )
        hashtags = await conn.execute_query_dict(
            f"""SELECT tag AS term, avg(p.sentiment_score) AS mean, count(*) AS posts
            FROM post p CROSS JOIN LATERAL unnest(p.hashtags) AS tag
            WHERE {where} GROUP BY tag ORDER BY posts DESC, tag LIMIT ${n + 1}""",
            [*params, top_n],
        )
        counts = {r["sentiment"]: int(r["n"]) for r in totals}
        total = sum(counts.values())
        mean = sum(float(r["mean"]) * int(r["n"]) for r in totals) / total if total else None
        found = [TermSentiment(r["term"], float(r["mean"]), int(r["posts"])) for r in terms]
        return SentimentSummary(
            posts=total,
            positive=counts.get("positive", 0),
            neutral=counts.get("neutral", 0),
            negative=counts.get("negative", 0),
            mean_score=mean,
            timeline=[
                SentimentBucket(
                    start=r["bucket"],
                    positive=int(r["positive"]),
                    neutral=int(r["neutral"]),
                    negative=int(r["negative"]),
                    mean_score=float(r["mean"]) if r["mean"] is not None else None,
                )
                for r in timeline
            ],
            top_positive=sorted(
                (t for t in found if t.mean_score > 0),
                key=lambda t: (-round(t.mean_score, 9), -t.posts, t.term),
            )[:top_n],
            top_negative=sorted(
                (t for t in found if t.mean_score < 0),
                key=lambda t: (round(t.mean_score, 9), -t.posts, t.term),
            )[:top_n],
            languages=[(r["language"] or "und", int(r["n"])) for r in languages],
            top_keywords=sorted(found, key=lambda t: (-t.posts, t.term))[:top_n],
            top_hashtags=[
                TermSentiment(
                    r["term"], float(r["mean"]) if r["mean"] is not None else 0.0, int(r["posts"])
                )
                for r in hashtags
            ],
        )


def _score_record(f: InfluencerFigures) -> tuple[Any, ...]:
    def growth(days: int) -> float | None:
        g = f.growth.get(days)
        return g.relative if g is not None else None

    return (
        f.influencer_id,
        f.computed_at,
        FORMULA_VERSION,
        f.influence.score,
        f.authenticity.score,
        f.followers,
        f.engagement.posts,
        f.engagement.by_followers,
        f.engagement.by_views,
        growth(7),
        growth(30),
        growth(90),
        f.mean_sentiment,
        json.dumps(breakdown_json(f)),
        json.dumps(inputs_json(f)),
        json.dumps(authenticity_json(f)),
    )


def _score_from_row(row: dict[str, Any]) -> InfluencerScore:
    values = dict(row)
    for key in ("breakdown", "inputs", "authenticity"):
        if isinstance(values[key], str):
            values[key] = json.loads(values[key])
    return InfluencerScore(**values)  # read-only: GraphQL reads its attributes


analytics = AnalyticsService()
