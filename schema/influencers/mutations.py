from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.influencers import rules
from domain.influencers.service import influencers
from schema.errors import NotFound, PlanLimitReached, ValidationFailed, run_mutation
from schema.influencers.types import AddInfluencerInput, Influencer, UpdateInfluencerInput
from schema.permissions import requires
from schema.relay import decode_id


@strawberry.type
class AddInfluencerSuccess:
    influencer: Influencer


@strawberry.type
class UpdateInfluencerSuccess:
    influencer: Influencer


@strawberry.type
class RemoveInfluencerSuccess:
    removed_id: relay.GlobalID


AddInfluencerPayload = Annotated[
    AddInfluencerSuccess | ValidationFailed | PlanLimitReached,
    strawberry.union("AddInfluencerPayload"),
]
UpdateInfluencerPayload = Annotated[
    UpdateInfluencerSuccess | ValidationFailed | NotFound,
    strawberry.union("UpdateInfluencerPayload"),
]
RemoveInfluencerPayload = Annotated[
    RemoveInfluencerSuccess | ValidationFailed | NotFound,
    strawberry.union("RemoveInfluencerPayload"),
]


@strawberry.type
class InfluencerMutations:
    @strawberry.mutation(extensions=[requires("influencers:write")])
    async def add_influencer(self, info: Info, input: AddInfluencerInput) -> AddInfluencerPayload:
        data = rules.InfluencerInput(
            display_name=input.display_name,
            category=input.category,
            country=input.country,
            notes=input.notes,
            accounts=tuple(
                rules.AccountInput(
                    platform=a.platform.value,
                    handle=a.handle,
                    external_id=a.external_id,
                    followers=a.followers,
                    verified=a.verified,
                    profile_url=a.profile_url,
                )
                for a in input.accounts
            ),
        )

        async def run() -> AddInfluencerSuccess:
            row = await influencers.track(info.context.principal.tenant_id, data)
            return AddInfluencerSuccess(influencer=Influencer.from_model(row))

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(extensions=[requires("influencers:write")])
    async def update_influencer(
        self, info: Info, input: UpdateInfluencerInput
    ) -> UpdateInfluencerPayload:
        async def run() -> UpdateInfluencerSuccess:
            row = await influencers.update(
                decode_id(input.id, "Influencer"),
                display_name=input.display_name,
                category=input.category,
                country=input.country,
                notes=input.notes,
            )
            return UpdateInfluencerSuccess(influencer=Influencer.from_model(row))

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(extensions=[requires("influencers:write")])
    async def remove_influencer(self, info: Info, id: relay.GlobalID) -> RemoveInfluencerPayload:
        async def run() -> RemoveInfluencerSuccess:
            await influencers.remove(decode_id(id, "Influencer"))
            return RemoveInfluencerSuccess(removed_id=id)

        return await run_mutation(run)  # type: ignore[return-value]
