from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.accounts.members import members
from domain.accounts.service import auth
from schema.accounts.mutations import _auth
from schema.accounts.types import AuthPayload
from schema.errors import (
    NotFound,
    PermissionDenied,
    PlanLimitReached,
    ValidationFailed,
    run_mutation,
)
from schema.members.types import Invitation, Member, MemberRole
from schema.permissions import requires
from schema.relay import decode_id


@strawberry.input
class InviteMemberInput:
    email: str
    role: MemberRole
    send_email: bool = strawberry.field(
        default=True,
        description="Mail the accept link to the invitee (the token then exists only in the "
        "mail). False: the token is returned once, for your own delivery.",
    )


@strawberry.type
class InviteMemberSuccess:
    invitation: Invitation
    token: str | None = strawberry.field(
        description="With sendEmail: false, shown once: the invitee accepts with it "
        "(acceptInvitation); deliver it in the accept link (docs/members.md). Null when the "
        "invitation was mailed. Only its hash is stored."
    )


InviteMemberPayload = Annotated[
    InviteMemberSuccess | ValidationFailed | PermissionDenied | PlanLimitReached,
    strawberry.union("InviteMemberPayload"),
]


@strawberry.type
class RevokeInvitationSuccess:
    invitation: Invitation


RevokeInvitationPayload = Annotated[
    RevokeInvitationSuccess | NotFound | PermissionDenied | ValidationFailed,
    strawberry.union("RevokeInvitationPayload"),
]


@strawberry.input(
    description="Signed in: the token alone. Otherwise sign up with the invited e-mail and a "
    "password."
)
class AcceptInvitationInput:
    token: str
    email: str | None = None
    password: str | None = None
    display_name: str = ""


AcceptInvitationPayload = Annotated[
    AuthPayload | ValidationFailed | PermissionDenied | PlanLimitReached,
    strawberry.union("AcceptInvitationPayload"),
]


@strawberry.input
class ChangeMemberRoleInput:
    member_id: relay.GlobalID
    role: MemberRole


@strawberry.type
class ChangeMemberRoleSuccess:
    member: Member


ChangeMemberRolePayload = Annotated[
    ChangeMemberRoleSuccess | NotFound | PermissionDenied | ValidationFailed,
    strawberry.union("ChangeMemberRolePayload"),
]


@strawberry.type
class RemoveMemberSuccess:
    member: Member


RemoveMemberPayload = Annotated[
    RemoveMemberSuccess | NotFound | PermissionDenied | ValidationFailed,
    strawberry.union("RemoveMemberPayload"),
]


@strawberry.type
class MemberMutations:
    @strawberry.mutation(
        extensions=[requires("members:manage")],
        description="Invite someone by e-mail with a role (at most your own; only owners "
        "invite owners). Holds a seat until accepted, revoked or expired.",
    )
    async def invite_member(self, info: Info, input: InviteMemberInput) -> InviteMemberPayload:
        ttl = timedelta(seconds=info.context.settings.invitation_ttl_seconds)

        async def run() -> InviteMemberSuccess:
            invitation, token = await members.invite(
                info.context.principal,
                email=input.email,
                role=input.role.value,
                ttl=ttl,
                send_email=input.send_email,
            )
            return InviteMemberSuccess(invitation=Invitation.from_model(invitation), token=token)

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(extensions=[requires("members:manage")])
    async def revoke_invitation(self, info: Info, id: relay.GlobalID) -> RevokeInvitationPayload:
        async def run() -> RevokeInvitationSuccess:
            invitation = await members.revoke_invitation(
                info.context.principal, decode_id(id, "Invitation")
            )
            return RevokeInvitationSuccess(invitation=Invitation.from_model(invitation))

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(
        description="Join the invitation's tenant: returns tokens for it. Public: the "
        "invitation token is the credential (signed-in users must be its addressee)."
    )
    async def accept_invitation(
        self, info: Info, input: AcceptInvitationInput
    ) -> AcceptInvitationPayload:
        principal = info.context.principal

        async def run() -> AuthPayload:
            accepted = await members.accept(
                input.token,
                user_id=principal.user_id if principal else None,
                email=input.email,
                password=input.password,
                display_name=input.display_name,
            )
            pair = await auth.issue(
                info.context.settings, accepted.user, accepted.tenant, accepted.membership.role
            )
            return _auth(pair)

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=[requires("members:manage")],
        description="Change a member's role. Takes effect at their next token refresh.",
    )
    async def change_member_role(
        self, info: Info, input: ChangeMemberRoleInput
    ) -> ChangeMemberRolePayload:
        async def run() -> ChangeMemberRoleSuccess:
            member = await members.change_role(
                info.context.principal,
                decode_id(input.member_id, "Member", "memberId"),
                input.role.value,
            )
            return ChangeMemberRoleSuccess(member=Member.from_model(member))

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=[requires("members:manage")],
        description="Remove a member from the tenant; their refresh tokens are revoked.",
    )
    async def remove_member(self, info: Info, member_id: relay.GlobalID) -> RemoveMemberPayload:
        async def run() -> RemoveMemberSuccess:
            member = await members.remove(
                info.context.principal, decode_id(member_id, "Member", "memberId")
            )
            return RemoveMemberSuccess(member=Member.from_model(member))

        return await run_mutation(run)  # type: ignore[return-value]
