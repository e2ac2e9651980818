"""Insights, anomalies and alert rules: I/O. Runs inside the caller's tenant transaction;
never commits. The figures come from the pure functions in domain/insights/rules.py,
digest.py and alerts.py."""

from __future__ import annotations

import builtins
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tortoise.queryset import QuerySet

from domain import events
from domain.analytics.engagement import FollowerSnapshot as Snap
from domain.errors import FieldError, NotFound, ValidationFailed
from domain.influencers.models import Influencer, InfluencerAccount
from domain.insights import alerts, rules
from domain.insights.digest import Digest, build_digest
from domain.insights.models import AlertEvent, AlertRule, Anomaly, Insight
from domain.pagination import Page, newest_first
from domain.posts.models import Post
from tenants import outbox
from tenants.tx import current_tx

DAILY_DIGEST = "daily_digest"
ANOMALY_LOOKBACK = timedelta(days=rules.RECENT_DAYS + rules.BASELINE_DAYS + 1)
POSTING_TIMES_DAYS = 90  # best posting times use the tenant's last 90 days of posts


@dataclass(frozen=True)
class Range:
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class RuleChanges:
    name: str | None = None
    metric: str | None = None
    condition: str | None = None
    threshold: float | None = None
    window_hours: int | None = None
    channels: tuple[str, ...] | None = None
    influencer_id: int | None = None
    clear_influencer: bool = False
    enabled: bool | None = None


async def _newest_first(query: QuerySet[Any], first: int | None, after: str | None) -> Page[Any]:
    return await newest_first(query, first, after, "id")


async def _lock(job: str) -> None:
    """Serialise one job per tenant (released at commit): two runs never write twice."""
    tx = current_tx()
    await tx.conn.execute_query(
        "SELECT pg_advisory_xact_lock(hashtext($1))", [f"{tx.schema}:insights:{job}"]
    )


class InsightService:
    # -- reading the data -----------------------------------------------------------------------

    async def points(
        self,
        since: datetime,
        until: datetime | None = None,
        influencer_id: int | None = None,
        platform: str | None = None,
    ) -> list[rules.PostPoint]:
        """Posts published in [since, until) as the pure functions take them."""
        followers = dict(await InfluencerAccount.all().values_list("id", "followers"))
        query = Post.filter(published_at__gte=since)
        if until is not None:
            query = query.filter(published_at__lt=until)
        if influencer_id is not None:
            query = query.filter(influencer_id=influencer_id)
        if platform is not None:
            query = query.filter(platform=platform)
        rows = await query.order_by("published_at", "id").values_list(
            "id",
            "influencer_id",
            "account_id",
            "platform",
            "published_at",
            "likes",
            "comments",
            "shares",
            "sentiment_score",
        )
        return [
            rules.PostPoint(
                post_id=pid,
                influencer_id=inf,
                account_id=acc,
                platform=platform,
                published_at=at,
                interactions=int(likes + comments + shares),
                followers=int(followers.get(acc, 0)),
                sentiment_score=score,
            )
            for pid, inf, acc, platform, at, likes, comments, shares, score in rows
        ]

    async def snapshots(
        self, since: datetime, influencer_id: int | None = None
    ) -> dict[int, list[Snap]]:
        """Follower snapshots per account from `since` on, plus each account's latest one
        before it (so totals at `since` are known), oldest first."""
        scope = ""
        args: list[Any] = [since]
        if influencer_id is not None:
            scope = "AND account_id IN (SELECT id FROM influencer_account WHERE influencer_id = $2)"
            args.append(influencer_id)
        rows = await current_tx().conn.execute_query_dict(
            f"""SELECT * FROM (
                  SELECT DISTINCT ON (account_id) account_id, taken_at, followers
                  FROM follower_snapshot WHERE taken_at < $1 {scope}
                  ORDER BY account_id, taken_at DESC) AS before
                UNION ALL
                SELECT account_id, taken_at, followers FROM follower_snapshot
                WHERE taken_at >= $1 {scope}
                ORDER BY account_id, taken_at""",
            args,
        )
        out: dict[int, list[Snap]] = defaultdict(list)
        for r in rows:
            out[int(r["account_id"])].append(Snap(r["taken_at"], int(r["followers"])))
        return dict(out)

    async def names(self) -> dict[int, str]:
        return dict(await Influencer.all().values_list("id", "display_name"))

    async def posting_times(self, platform: str, timezone: str = "UTC") -> rules.PostingTimes:
        """Best posting times from the platform's posts in the 90 days up to the newest one,
        in local time of the IANA `timezone`."""
        try:
            tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationFailed(FieldError("timezone", "not an IANA time zone")) from exc
        newest = await Post.filter(platform=platform).order_by("-published_at").first()
        if newest is None:
            return rules.best_posting_times([], platform, tz=tz)
        since = newest.published_at - timedelta(days=POSTING_TIMES_DAYS)
        points = await self.points(since, platform=platform)
        return rules.best_posting_times(points, platform, tz=tz)

    # -- jobs ----------------------------------------------------------------------------------

    async def build_daily_digest(self, now: datetime) -> Digest | None:
        """The digest of the last full UTC day before `now` (None: it is already stored).
        Only reads, so a job may rewrite its prose outside any transaction."""
        end = datetime.combine(now.date(), time(), tzinfo=now.tzinfo)
        start = end - timedelta(days=1)
        if await Insight.exists(kind=DAILY_DIGEST, period_start=start):
            return None
        points = await self.points(min(start - timedelta(days=1), end - ANOMALY_LOOKBACK), end)
        platforms = sorted({p.platform for p in points})
        return build_digest(
            points,
            start,
            end,
            await self.names(),
            anomalies=rules.detect_anomalies(points, end),
            snapshots=await self.snapshots(start - timedelta(days=1)),
            posting_times=[rules.best_posting_times(points, p) for p in platforms],
        )

    async def store_daily_digest(self, digest: Digest, prose: str | None = None) -> Insight | None:
        """Write the digest once per day (None: a concurrent run stored it first) and
        publish `insight_created` after commit."""
        await _lock(DAILY_DIGEST)
        if await Insight.exists(kind=DAILY_DIGEST, period_start=digest.period_start):
            return None
        body = digest.as_json()
        if prose:
            body["prose"] = prose
        row = await Insight.create(
            kind=DAILY_DIGEST,
            period_start=digest.period_start,
            period_end=digest.period_end,
            body=body,
        )
        outbox.publish(events.INSIGHT_CREATED, {"id": row.id, "kind": row.kind})
        return row

    async def write_daily_digest(self, now: datetime) -> Insight | None:
        """Build and store the digest in one go (no prose rewrite)."""
        digest = await self.build_daily_digest(now)
        return await self.store_daily_digest(digest) if digest else None

    async def detect_anomalies(self, now: datetime) -> builtins.list[Anomaly]:
        """Store the anomalies found at `now` that are not stored yet; returns the new ones."""
        await _lock("anomalies")
        found = rules.detect_anomalies(await self.points(now - ANOMALY_LOOKBACK, now), now)
        if not found:
            return []
        known = set(
            await Anomaly.filter(key__in=[f.key for f in found]).values_list("key", flat=True)
        )
        fresh = [
            Anomaly(
                key=f.key,
                kind=f.kind,
                influencer_id=f.influencer_id,
                post_id=f.post_id,
                metric=f.metric,
                value=f.value,
                baseline=f.baseline,
                score=f.score,
                severity=f.severity,
                detail=f.detail,
                window_start=f.window_start,
                window_end=f.window_end,
            )
            for f in found
            if f.key not in known
        ]
        if fresh:
            await Anomaly.bulk_create(fresh)
        return fresh

    async def evaluate_alerts(self, now: datetime) -> builtins.list[AlertEvent]:
        """Judge every enabled rule at `now`; a rule whose condition starts to hold fires once
        (an AlertEvent and `alert_triggered`), one whose condition stops holding re-arms."""
        await _lock("alerts")
        rows = await AlertRule.filter(enabled=True).order_by("id")
        if not rows:
            return []
        longest = max(timedelta(hours=r.window_hours) for r in rows)
        points = await self.points(now - 2 * longest, now)
        snapshots = await self.snapshots(now - 2 * longest)
        accounts: dict[int, int] = dict(
            await InfluencerAccount.all().values_list("id", "influencer_id")
        )
        points_of: dict[int, list[rules.PostPoint]] = defaultdict(list)
        for p in points:
            points_of[p.influencer_id].append(p)
        snaps_of: dict[int, dict[int, list[Snap]]] = defaultdict(dict)
        for account, snaps in snapshots.items():
            if account in accounts:
                snaps_of[accounts[account]][account] = snaps
        fired: list[AlertEvent] = []
        for row in rows:
            spec = _spec(row)
            scoped_points, scoped_snaps = points, snapshots
            if spec.influencer_id is not None:
                scoped_points = points_of.get(spec.influencer_id, [])
                scoped_snaps = snaps_of.get(spec.influencer_id, {})
            obs = alerts.observe(spec, scoped_points, now, scoped_snaps)
            state, fire = alerts.next_state(row.state, obs.holds)
            row.state = state
            row.last_value = obs.value
            row.last_evaluated_at = now
            if fire:
                row.last_fired_at = now
                event = await AlertEvent.create(
                    rule=row,
                    metric=row.metric,
                    condition=row.condition,
                    threshold=row.threshold,
                    value=obs.value,
                    previous_value=obs.previous,
                    message=_message(row, obs),
                    deliveries={c: "pending" for c in row.channels},
                )
                outbox.publish(events.ALERT_TRIGGERED, {"id": event.id, "rule_id": row.id})
                fired.append(event)
            await row.save(
                update_fields=["state", "last_value", "last_evaluated_at", "last_fired_at"]
            )
        return fired

    # -- alert rules ---------------------------------------------------------------------------

    async def create_rule(self, spec: alerts.RuleSpec) -> AlertRule:
        await self._check(spec)
        await _lock("rules")  # two concurrent creations cannot both pass the cap
        if await AlertRule.all().count() >= alerts.MAX_RULES:
            raise ValidationFailed(
                FieldError("input", f"a tenant has at most {alerts.MAX_RULES} alert rules")
            )
        return await AlertRule.create(
            name=spec.name.strip(),
            metric=spec.metric,
            condition=spec.condition,
            threshold=spec.threshold,
            window_hours=spec.window_hours,
            influencer_id=spec.influencer_id,
            channels=list(spec.channels),
        )

    async def update_rule(self, rule_id: int, changes: RuleChanges) -> AlertRule:
        row = await AlertRule.filter(id=rule_id).select_for_update().first()
        if row is None:
            raise NotFound("AlertRule", rule_id)
        old = _spec(row)
        spec = alerts.RuleSpec(
            name=changes.name if changes.name is not None else old.name,
            metric=changes.metric or old.metric,
            condition=changes.condition or old.condition,
            threshold=changes.threshold if changes.threshold is not None else old.threshold,
            window_hours=changes.window_hours
            if changes.window_hours is not None
            else old.window_hours,
            channels=changes.channels if changes.channels is not None else old.channels,
            influencer_id=None
            if changes.clear_influencer
            else (changes.influencer_id or old.influencer_id),
        )
        await self._check(spec)
        if replace(spec, name=old.name, channels=old.channels) != old:
            row.state = alerts.ARMED  # a different condition: its crossings start afresh
        row.name = spec.name.strip()
        row.metric, row.condition, row.threshold = spec.metric, spec.condition, spec.threshold
        row.window_hours, row.channels = spec.window_hours, list(spec.channels)
        row.influencer_id = spec.influencer_id  # type: ignore[attr-defined]
        if changes.enabled is not None:
            row.enabled = changes.enabled
        await row.save()
        return row

    async def delete_rule(self, rule_id: int) -> None:
        if not await AlertRule.filter(id=rule_id).delete():
            raise NotFound("AlertRule", rule_id)

    async def _check(self, spec: alerts.RuleSpec) -> None:
        errors = alerts.check_rule(spec)
        if spec.influencer_id is not None and not await Influencer.exists(id=spec.influencer_id):
            errors.append(FieldError("influencerId", "no such influencer"))
        if errors:
            raise ValidationFailed(errors)

    async def rules_by_ids(self, ids: Sequence[int]) -> dict[int, AlertRule]:
        return {r.id: r for r in await AlertRule.filter(id__in=list(ids))}

    async def list_rules(self) -> builtins.list[AlertRule]:
        return await AlertRule.all().order_by("id")

    # -- lists ---------------------------------------------------------------------------------

    async def list_insights(
        self, period: Range, first: int | None = None, after: str | None = None
    ) -> Page[Insight]:
        query = Insight.all()
        if period.since is not None:
            query = query.filter(period_start__gte=period.since)
        if period.until is not None:
            query = query.filter(period_start__lt=period.until)
        return await _newest_first(query, first, after)

    async def list_anomalies(
        self,
        period: Range,
        influencer_id: int | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Page[Anomaly]:
        query = Anomaly.all()
        if period.since is not None:
            query = query.filter(window_end__gte=period.since)
        if period.until is not None:
            query = query.filter(window_end__lt=period.until)
        if influencer_id is not None:
            query = query.filter(influencer_id=influencer_id)
        return await _newest_first(query, first, after)

    async def list_events(
        self,
        period: Range,
        rule_id: int | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Page[AlertEvent]:
        query = AlertEvent.all()
        if period.since is not None:
            query = query.filter(triggered_at__gte=period.since)
        if period.until is not None:
            query = query.filter(triggered_at__lt=period.until)
        if rule_id is not None:
            query = query.filter(rule_id=rule_id)
        return await _newest_first(query, first, after)

    async def insights_by_ids(self, ids: Sequence[int]) -> dict[int, Insight]:
        return {r.id: r for r in await Insight.filter(id__in=list(ids))}

    async def anomalies_by_ids(self, ids: Sequence[int]) -> dict[int, Anomaly]:
        return {r.id: r for r in await Anomaly.filter(id__in=list(ids))}

    async def events_by_ids(self, ids: Sequence[int]) -> dict[int, AlertEvent]:
        return {r.id: r for r in await AlertEvent.filter(id__in=list(ids))}

    async def insight(self, insight_id: int) -> Insight | None:
        return await Insight.get_or_none(id=insight_id)

    async def event(self, event_id: int) -> AlertEvent | None:
        return await AlertEvent.get_or_none(id=event_id)


def _spec(row: AlertRule) -> alerts.RuleSpec:
    return alerts.RuleSpec(
        name=row.name,
        metric=row.metric,
        condition=row.condition,
        threshold=row.threshold,
        window_hours=row.window_hours,
        channels=tuple(row.channels),
        influencer_id=row.influencer_id,  # type: ignore[attr-defined]
    )


def _message(row: AlertRule, obs: alerts.Observation) -> str:
    value = "n/a" if obs.value is None else f"{obs.value:g}"
    if row.condition == "change_pct":
        return (
            f"{row.name}: {row.metric} changed {obs.change_pct:+.1f}% over {row.window_hours} h "
            f"(now {value}, before {obs.previous:g}; threshold {row.threshold:+g}%)"
        )
    return (
        f"{row.name}: {row.metric} is {value} over the last {row.window_hours} h, "
        f"{row.condition} {row.threshold:g}"
    )


insights = InsightService()
