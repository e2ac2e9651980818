from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.insights.alerts import RuleSpec
from domain.insights.service import RuleChanges, insights
from schema.errors import NotFound, ValidationFailed, run_mutation
from schema.insights.types import AlertRule, CreateAlertRuleInput, UpdateAlertRuleInput
from schema.permissions import requires
from schema.relay import decode_id


@strawberry.type
class CreateAlertRuleSuccess:
    rule: AlertRule


@strawberry.type
class UpdateAlertRuleSuccess:
    rule: AlertRule


@strawberry.type
class DeleteAlertRuleSuccess:
    deleted_id: relay.GlobalID


CreateAlertRulePayload = Annotated[
    CreateAlertRuleSuccess | ValidationFailed, strawberry.union("CreateAlertRulePayload")
]
UpdateAlertRulePayload = Annotated[
    UpdateAlertRuleSuccess | ValidationFailed | NotFound,
    strawberry.union("UpdateAlertRulePayload"),
]
DeleteAlertRulePayload = Annotated[
    DeleteAlertRuleSuccess | ValidationFailed | NotFound,
    strawberry.union("DeleteAlertRulePayload"),
]


@strawberry.type
class InsightMutations:
    @strawberry.mutation(
        extensions=[requires("analytics:write")],
        description="Define an alert: metric, condition, threshold over a window, channels.",
    )
    async def create_alert_rule(
        self, info: Info, input: CreateAlertRuleInput
    ) -> CreateAlertRulePayload:
        async def run() -> CreateAlertRuleSuccess:
            spec = RuleSpec(
                name=input.name,
                metric=input.metric.value,
                condition=input.condition.value,
                threshold=input.threshold,
                window_hours=input.window_hours,
                channels=tuple(c.value for c in input.channels),
                influencer_id=decode_id(input.influencer_id, "Influencer", "influencerId")
                if input.influencer_id
                else None,
            )
            return CreateAlertRuleSuccess(
                rule=AlertRule.from_model(await insights.create_rule(spec))
            )

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(extensions=[requires("analytics:write")])
    async def update_alert_rule(
        self, info: Info, input: UpdateAlertRuleInput
    ) -> UpdateAlertRulePayload:
        async def run() -> UpdateAlertRuleSuccess:
            changes = RuleChanges(
                name=input.name,
                metric=input.metric.value if input.metric else None,
                condition=input.condition.value if input.condition else None,
                threshold=input.threshold,
                window_hours=input.window_hours,
                channels=tuple(c.value for c in input.channels)
                if input.channels is not None
                else None,
                influencer_id=decode_id(input.influencer_id, "Influencer", "influencerId")
                if input.influencer_id
                else None,
                clear_influencer=input.whole_tenant,
                enabled=input.enabled,
            )
            row = await insights.update_rule(decode_id(input.id, "AlertRule"), changes)
            return UpdateAlertRuleSuccess(rule=AlertRule.from_model(row))

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(extensions=[requires("analytics:write")])
    async def delete_alert_rule(self, info: Info, id: relay.GlobalID) -> DeleteAlertRulePayload:
        async def run() -> DeleteAlertRuleSuccess:
            await insights.delete_rule(decode_id(id, "AlertRule"))
            return DeleteAlertRuleSuccess(deleted_id=id)

        return await run_mutation(run)  # type: ignore[return-value]
