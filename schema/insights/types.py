"""GraphQL types of insights, anomalies and alert rules."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.insights import models, rules
from domain.insights.service import insights
from schema.influencers.types import Influencer, Platform
from schema.loading import tenant_nodes
from schema.posts.types import Post


@strawberry.enum
class InsightKind(Enum):
    DAILY_DIGEST = "daily_digest"


@strawberry.input(description="A time range [since, until); either end may be open.")
class InsightRange:
    since: datetime | None = None
    until: datetime | None = None


@strawberry.type(description="A key figure of the period and its change on the period before.")
class DigestMetric:
    name: str = strawberry.field(
        description="posts | interactions | engagement_rate | sentiment | followers"
    )
    value: float | None
    previous: float | None
    change_pct: float | None = strawberry.field(
        description="(value - previous) / |previous| x 100; null without a previous figure or 0."
    )


@strawberry.type(description="A generated insight, e.g. the daily digest of one UTC day.")
class Insight(relay.Node):
    id: relay.NodeID[int]
    kind: InsightKind
    period_start: datetime
    period_end: datetime
    created_at: datetime
    summary: str
    metrics: list[DigestMetric]
    highlights: list[str]
    concerns: list[str]
    recommendations: list[str]
    prose: str | None = strawberry.field(
        description="The digest rewritten by the configured language model; null when none "
        "is configured or it failed (summary and lists are always built from the data)."
    )

    @classmethod
    def from_model(cls, m: models.Insight) -> Insight:
        body: dict[str, Any] = m.body or {}
        return cls(
            id=m.id,
            kind=InsightKind(m.kind),
            period_start=m.period_start,
            period_end=m.period_end,
            created_at=m.created_at,
            summary=str(body.get("summary", "")),
            metrics=[
                DigestMetric(
                    name=x["name"],
                    value=x.get("value"),
                    previous=x.get("previous"),
                    change_pct=x.get("change_pct"),
                )
                for x in body.get("metrics", [])
            ],
            highlights=list(body.get("highlights", [])),
            concerns=list(body.get("concerns", [])),
            recommendations=list(body.get("recommendations", [])),
            prose=body.get("prose"),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Insight | None]:
        return await tenant_nodes(
            info.context.tenant_schema, node_ids, insights.insights_by_ids, cls.from_model
        )


@strawberry.type
class InsightConnection(relay.Connection[Insight]):
    """Insights, newest first."""


@strawberry.enum
class AnomalyKind(Enum):
    ENGAGEMENT_SPIKE = "engagement_spike"
    ENGAGEMENT_DROP = "engagement_drop"
    VIRAL_POST = "viral_post"
    SENTIMENT_NEGATIVE = "sentiment_negative"


@strawberry.type(description="An anomaly against an influencer's own baseline.")
class Anomaly(relay.Node):
    id: relay.NodeID[int]
    influencer_id: strawberry.Private[int | None]
    post_id: strawberry.Private[int | None]
    kind: AnomalyKind
    metric: str = strawberry.field(description="interactions_per_post | interactions | sentiment")
    value: float = strawberry.field(description="The recent figure (the post's, when viral).")
    baseline: float = strawberry.field(description="The account's own typical figure.")
    score: float = strawberry.field(
        description="value / baseline (engagement, viral) or value - baseline (sentiment)."
    )
    severity: str
    detail: str
    window_start: datetime
    window_end: datetime
    detected_at: datetime

    @classmethod
    def from_model(cls, m: models.Anomaly) -> Anomaly:
        return cls(
            id=m.id,
            influencer_id=m.influencer_id,
            post_id=m.post_id,
            kind=AnomalyKind(m.kind),
            metric=m.metric,
            value=m.value,
            baseline=m.baseline,
            score=m.score,
            severity=m.severity,
            detail=m.detail,
            window_start=m.window_start,
            window_end=m.window_end,
            detected_at=m.detected_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Anomaly | None]:
        return await tenant_nodes(
            info.context.tenant_schema, node_ids, insights.anomalies_by_ids, cls.from_model
        )

    @strawberry.field
    async def influencer(self, info: Info) -> Influencer | None:
        if self.influencer_id is None:
            return None
        row = await info.context.loaders.influencer_by_id.load(self.influencer_id)
        return Influencer.from_model(row) if row else None

    @strawberry.field(description="The viral post (viral_post anomalies).")
    async def post(self, info: Info) -> Post | None:
        if self.post_id is None:
            return None
        row = await info.context.loaders.post_by_id.load(self.post_id)
        return Post.from_model(row) if row else None


@strawberry.type
class AnomalyConnection(relay.Connection[Anomaly]):
    """Anomalies, newest first."""


@strawberry.type(description="A weekday x hour slot (local time) and how well posts there did.")
class PostingSlot:
    weekday: int = strawberry.field(description="0 = Monday ... 6 = Sunday; -1 in byHour.")
    hour: int = strawberry.field(description="0-23; -1 in byWeekday.")
    posts: int
    lift: float = strawberry.field(
        description="Mean of (interactions + 1) / (the account's median post + 1)."
    )

    @classmethod
    def from_score(cls, s: rules.SlotScore) -> PostingSlot:
        return cls(weekday=s.weekday, hour=s.hour, posts=s.posts, lift=s.lift)


@strawberry.type(description="When the tenant's posts on a platform engage best.")
class BestPostingTimes:
    platform: Platform
    timezone: str = strawberry.field(description="The IANA zone of weekdays and hours.")
    posts: int = strawberry.field(description="Posts of the last 90 days looked at.")
    enough_data: bool = strawberry.field(description="False under 30 posts: no ranking is given.")
    slots: list[PostingSlot] = strawberry.field(
        description="Slots with at least 3 posts, best first."
    )
    by_weekday: list[PostingSlot]
    by_hour: list[PostingSlot]

    @classmethod
    def from_result(cls, t: rules.PostingTimes, timezone: str) -> BestPostingTimes:
        return cls(
            platform=Platform(t.platform),
            timezone=timezone,
            posts=t.posts,
            enough_data=t.enough_data,
            slots=[PostingSlot.from_score(s) for s in t.slots],
            by_weekday=[PostingSlot.from_score(s) for s in t.by_weekday],
            by_hour=[PostingSlot.from_score(s) for s in t.by_hour],
        )


@strawberry.enum
class AlertMetric(Enum):
    POSTS = "posts"
    INTERACTIONS = "interactions"
    ENGAGEMENT_RATE = "engagement_rate"
    SENTIMENT = "sentiment"
    FOLLOWERS = "followers"


@strawberry.enum
class AlertCondition(Enum):
    ABOVE = "above"
    BELOW = "below"
    CHANGE_PCT = "change_pct"


@strawberry.enum
class AlertChannel(Enum):
    IN_APP = "in_app"
    WEBHOOK = "webhook"
    EMAIL = "email"


@strawberry.enum
class AlertRuleState(Enum):
    ARMED = "armed"
    FIRED = "fired"


@strawberry.type(description="A tenant-defined alert; fires once per crossing.")
class AlertRule(relay.Node):
    id: relay.NodeID[int]
    influencer_id: strawberry.Private[int | None]
    name: str
    metric: AlertMetric
    condition: AlertCondition
    threshold: float
    window_hours: int
    channels: list[AlertChannel]
    enabled: bool
    state: AlertRuleState
    last_value: float | None
    last_evaluated_at: datetime | None
    last_fired_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, m: models.AlertRule) -> AlertRule:
        return cls(
            id=m.id,
            influencer_id=m.influencer_id,  # type: ignore[attr-defined]
            name=m.name,
            metric=AlertMetric(m.metric),
            condition=AlertCondition(m.condition),
            threshold=m.threshold,
            window_hours=m.window_hours,
            channels=[AlertChannel(c) for c in m.channels],
            enabled=m.enabled,
            state=AlertRuleState(m.state),
            last_value=m.last_value,
            last_evaluated_at=m.last_evaluated_at,
            last_fired_at=m.last_fired_at,
            created_at=m.created_at,
            updated_at=m.updated_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[AlertRule | None]:
        return await tenant_nodes(
            info.context.tenant_schema, node_ids, insights.rules_by_ids, cls.from_model
        )

    @strawberry.field(description="The influencer the rule watches; null: the whole tenant.")
    async def influencer(self, info: Info) -> Influencer | None:
        if self.influencer_id is None:
            return None
        row = await info.context.loaders.influencer_by_id.load(self.influencer_id)
        return Influencer.from_model(row) if row else None


@strawberry.type
class AlertDelivery:
    channel: AlertChannel
    status: str = strawberry.field(description="pending until a sender delivers it.")


@strawberry.type(description="A rule's crossing: when it fired and on what value.")
class AlertEvent(relay.Node):
    id: relay.NodeID[int]
    rule_id: strawberry.Private[int]
    metric: AlertMetric
    condition: AlertCondition
    threshold: float
    value: float | None
    previous_value: float | None
    message: str
    deliveries: list[AlertDelivery]
    triggered_at: datetime

    @classmethod
    def from_model(cls, m: models.AlertEvent) -> AlertEvent:
        return cls(
            id=m.id,
            rule_id=m.rule_id,  # type: ignore[attr-defined]
            metric=AlertMetric(m.metric),
            condition=AlertCondition(m.condition),
            threshold=m.threshold,
            value=m.value,
            previous_value=m.previous_value,
            message=m.message,
            deliveries=[
                AlertDelivery(channel=AlertChannel(c), status=s)
                for c, s in sorted((m.deliveries or {}).items())
            ],
            triggered_at=m.triggered_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[AlertEvent | None]:
        return await tenant_nodes(
            info.context.tenant_schema, node_ids, insights.events_by_ids, cls.from_model
        )

    @strawberry.field
    async def rule(self, info: Info) -> AlertRule | None:
        row = await info.context.loaders.alert_rule_by_id.load(self.rule_id)
        return AlertRule.from_model(row) if row else None


@strawberry.type
class AlertEventConnection(relay.Connection[AlertEvent]):
    """Alert events, newest first."""


@strawberry.input
class CreateAlertRuleInput:
    name: str
    metric: AlertMetric
    condition: AlertCondition
    threshold: float
    window_hours: int = 24
    channels: list[AlertChannel] = strawberry.field(default_factory=lambda: [AlertChannel.IN_APP])
    influencer_id: relay.GlobalID | None = None


@strawberry.input(description="Only the fields given change. A new condition re-arms the rule.")
class UpdateAlertRuleInput:
    id: relay.GlobalID
    name: str | None = None
    metric: AlertMetric | None = None
    condition: AlertCondition | None = None
    threshold: float | None = None
    window_hours: int | None = None
    channels: list[AlertChannel] | None = None
    influencer_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Watch this influencer instead."
    )
    whole_tenant: bool = strawberry.field(
        default=False, description="True: watch the whole tenant (clears the influencer)."
    )
    enabled: bool | None = None
