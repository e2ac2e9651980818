"""Members: invite, accept (signed in or by signing up), change role, remove; the role rules;
the seat check; the audit log; isolation between tenants."""

from __future__ import annotations

from typing import Any

from tortoise.transactions import in_transaction

from tests.conftest import GQL, Tenant, set_plan

INVITE = """mutation($i: InviteMemberInput!) { inviteMember(input: $i) { __typename
    ... on InviteMemberSuccess { token invitation { id email role status } }
    ... on UserError { code message } ... on PlanLimitReached { limit allowed } } }"""
ACCEPT = """mutation($i: AcceptInvitationInput!) { acceptInvitation(input: $i) { __typename
    ... on AuthPayload { accessToken tenantSlug role } ... on UserError { code message } } }"""
CHANGE = """mutation($i: ChangeMemberRoleInput!) { changeMemberRole(input: $i) { __typename
    ... on ChangeMemberRoleSuccess { member { id role } } ... on UserError { code message } } }"""
REMOVE = """mutation($id: ID!) { removeMember(memberId: $id) { __typename
    ... on RemoveMemberSuccess { member { email } } ... on UserError { code message } } }"""
MEMBERS = "{ members(first: 50) { edges { node { id email role } } } }"
INVITATIONS = "{ invitations(pendingOnly: false) { edges { node { email status role } } } }"
AUDIT = """query($a: String) { auditLog(first: 100, action: $a) { edges { node {
    action actorUserId targetType targetId ip requestId metadata } } } }"""
LOG_IN = """mutation($i: LogInInput!) { logIn(input: $i) { __typename
    ... on AuthPayload { accessToken refreshToken } ... on UserError { code } } }"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) { __typename
    ... on AuthPayload { role } ... on UserError { code } } }"""


async def invite(gql: GQL, token: str, email: str, role: str) -> dict[str, Any]:
    data = await gql.ok(
        INVITE, {"i": {"email": email, "role": role, "sendEmail": False}}, token=token
    )
    return data["inviteMember"]  # type: ignore[no-any-return]


async def join(gql: GQL, owner: Tenant, role: str, name: str = "") -> tuple[str, str]:
    """Invite a new person with `role` and sign them up; returns (access token, member id)."""
    email = f"{name or role}-{owner.slug}@example.com"
    invited = await invite(gql, owner.token, email, role.upper())
    assert invited["__typename"] == "InviteMemberSuccess", invited
    data = await gql.ok(
        ACCEPT,
        {"i": {"token": invited["token"], "email": email, "password": "a long password 1"}},
    )
    accepted = data["acceptInvitation"]
    assert accepted["__typename"] == "AuthPayload", accepted
    assert accepted["role"] == role and accepted["tenantSlug"] == owner.slug
    members = (await gql.ok(MEMBERS, token=owner.token))["members"]["edges"]
    member_id = next(e["node"]["id"] for e in members if e["node"]["email"] == email)
    return accepted["accessToken"], member_id


async def test_invite_and_sign_up_to_accept(gql: GQL, tenant: Tenant) -> None:
    token, _ = await join(gql, tenant, "analyst")
    viewer = await gql.ok("{ viewer { role tenant { slug } } }", token=token)
    assert viewer["viewer"] == {"role": "analyst", "tenant": {"slug": tenant.slug}}
    members = (await gql.ok(MEMBERS, token=tenant.token))["members"]["edges"]
    assert sorted(e["node"]["role"] for e in members) == ["ANALYST", "OWNER"]
    invitations = (await gql.ok(INVITATIONS, token=tenant.token))["invitations"]["edges"]
    assert [e["node"]["status"] for e in invitations] == ["ACCEPTED"]


async def test_invitation_token_is_single_use_and_bound_to_its_email(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    email = f"someone-{tenant.slug}@example.com"
    invited = await invite(gql, tenant.token, email, "VIEWER")
    # a signed-in user with another e-mail cannot take it
    wrong = (await gql.ok(ACCEPT, {"i": {"token": invited["token"]}}, token=other_tenant.token))[
        "acceptInvitation"
    ]
    assert wrong["__typename"] == "PermissionDenied"
    # signing up with another address is refused too
    other = await gql.ok(
        ACCEPT,
        {"i": {"token": invited["token"], "email": "x@example.com", "password": "long password 2"}},
    )
    assert other["acceptInvitation"]["__typename"] == "ValidationFailed"
    ok = await gql.ok(
        ACCEPT, {"i": {"token": invited["token"], "email": email, "password": "long password 2"}}
    )
    assert ok["acceptInvitation"]["__typename"] == "AuthPayload"
    again = await gql.ok(
        ACCEPT, {"i": {"token": invited["token"], "email": email, "password": "long password 2"}}
    )
    assert again["acceptInvitation"]["__typename"] == "ValidationFailed"
    garbage = await gql.ok(ACCEPT, {"i": {"token": "nope", "email": email, "password": "x" * 12}})
    assert garbage["acceptInvitation"]["__typename"] == "ValidationFailed"


async def test_signed_in_user_accepts_and_switches_tenant(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    invited = await invite(gql, tenant.token, other_tenant.email, "VIEWER")
    data = await gql.ok(ACCEPT, {"i": {"token": invited["token"]}}, token=other_tenant.token)
    assert data["acceptInvitation"]["role"] == "viewer"
    viewer = await gql.ok(
        "{ viewer { role memberships { tenant { slug } role } } }",
        token=other_tenant.token,
        headers={"X-Tenant": tenant.slug},
    )
    assert viewer["viewer"]["role"] == "viewer"
    assert len(viewer["viewer"]["memberships"]) == 2


async def test_role_rules(gql: GQL, tenant: Tenant) -> None:
    await set_plan(tenant.slug, "starter")
    admin, admin_id = await join(gql, tenant, "admin")
    _, analyst_id = await join(gql, tenant, "analyst")
    members = (await gql.ok(MEMBERS, token=tenant.token))["members"]["edges"]
    owner_id = next(e["node"]["id"] for e in members if e["node"]["role"] == "OWNER")

    async def change(token: str, member: str, role: str) -> dict[str, Any]:
        data = await gql.ok(CHANGE, {"i": {"memberId": member, "role": role}}, token=token)
        return data["changeMemberRole"]  # type: ignore[no-any-return]

    # an admin cannot make owners, invite owners, or touch the owner
    assert (await change(admin, analyst_id, "OWNER"))["__typename"] == "PermissionDenied"
    invited = await invite(gql, admin, f"o-{tenant.slug}@example.com", "OWNER")
    assert invited["__typename"] == "PermissionDenied"
    assert (await change(admin, owner_id, "VIEWER"))["__typename"] == "PermissionDenied"
    removed = await gql.ok(REMOVE, {"id": owner_id}, token=admin)
    assert removed["removeMember"]["__typename"] == "PermissionDenied"
    # ... but manages analysts
    changed = await change(admin, analyst_id, "VIEWER")
    assert changed["__typename"] == "ChangeMemberRoleSuccess"
    assert changed["member"]["role"] == "VIEWER"
    # the last owner can neither be demoted nor removed, even by themself
    assert (await change(tenant.token, owner_id, "ADMIN"))["__typename"] == "PermissionDenied"
    removed = await gql.ok(REMOVE, {"id": owner_id}, token=tenant.token)
    assert removed["removeMember"]["__typename"] == "PermissionDenied"
    # with a second owner, the first can step down
    assert (await change(tenant.token, admin_id, "OWNER"))["__typename"] == (
        "ChangeMemberRoleSuccess"
    )
    assert (await change(tenant.token, owner_id, "ADMIN"))["__typename"] == (
        "ChangeMemberRoleSuccess"
    )
    # a role change revokes the member's tokens (tests/accounts/test_revocation.py): the promoted
    # admin signs in again
    login = await gql.ok(
        LOG_IN,
        {"i": {"email": f"admin-{tenant.slug}@example.com", "password": "a long password 1"}},
    )
    admin = login["logIn"]["accessToken"]
    # unknown ids and ids of another type are typed errors
    bad = await change(admin, "TWVtYmVyOjk5OTk5OTk=", "VIEWER")  # Member:9999999
    assert bad["__typename"] == "NotFound"


async def test_removed_member_cannot_refresh(gql: GQL, tenant: Tenant) -> None:
    email = f"leaver-{tenant.slug}@example.com"
    invited = await invite(gql, tenant.token, email, "ANALYST")
    await gql.ok(
        ACCEPT, {"i": {"token": invited["token"], "email": email, "password": "long password 3"}}
    )
    login = (await gql.ok(LOG_IN, {"i": {"email": email, "password": "long password 3"}}))["logIn"]
    members = (await gql.ok(MEMBERS, token=tenant.token))["members"]["edges"]
    member_id = next(e["node"]["id"] for e in members if e["node"]["email"] == email)
    # a role change reaches the member at their next refresh
    await gql.ok(CHANGE, {"i": {"memberId": member_id, "role": "VIEWER"}}, token=tenant.token)
    refreshed = await gql.ok(REFRESH, {"t": login["refreshToken"]})
    assert refreshed["refreshToken"] == {"__typename": "AuthPayload", "role": "viewer"}
    login = (await gql.ok(LOG_IN, {"i": {"email": email, "password": "long password 3"}}))["logIn"]
    removed = await gql.ok(REMOVE, {"id": member_id}, token=tenant.token)
    assert removed["removeMember"]["__typename"] == "RemoveMemberSuccess"
    refused = await gql.ok(REFRESH, {"t": login["refreshToken"]})
    assert refused["refreshToken"]["__typename"] == "AuthenticationFailed"


async def test_seats_are_the_plans(gql: GQL, tenant: Tenant) -> None:
    # the free plan has 2 seats: the owner plus one (a pending invitation holds a seat)
    first = await invite(gql, tenant.token, f"a-{tenant.slug}@example.com", "VIEWER")
    assert first["__typename"] == "InviteMemberSuccess"
    second = await invite(gql, tenant.token, f"b-{tenant.slug}@example.com", "VIEWER")
    assert second["__typename"] == "PlanLimitReached"
    assert (second["limit"], second["allowed"]) == ("seats", 2)
    # re-inviting the same address replaces its invitation rather than taking a seat
    again = await invite(gql, tenant.token, f"a-{tenant.slug}@example.com", "ANALYST")
    assert again["__typename"] == "InviteMemberSuccess"
    await set_plan(tenant.slug, "starter")
    third = await invite(gql, tenant.token, f"b-{tenant.slug}@example.com", "VIEWER")
    assert third["__typename"] == "InviteMemberSuccess"


async def test_bad_input_changes_nothing(gql: GQL, tenant: Tenant) -> None:
    bad = await invite(gql, tenant.token, "not an email", "VIEWER")
    assert bad["__typename"] == "ValidationFailed"
    self_invite = await invite(gql, tenant.token, tenant.email, "VIEWER")
    assert self_invite["__typename"] == "ValidationFailed"
    invitations = (await gql.ok(INVITATIONS, token=tenant.token))["invitations"]["edges"]
    assert invitations == []
    entries = (await gql.ok(AUDIT, {"a": "member.invited"}, token=tenant.token))["auditLog"]
    assert entries["edges"] == []


async def test_audit_log_records_security_actions(gql: GQL, tenant: Tenant) -> None:
    await gql.ok(LOG_IN, {"i": {"email": tenant.email, "password": "wrong password!"}})
    await gql.ok(LOG_IN, {"i": {"email": tenant.email, "password": tenant.password}})
    analyst, analyst_id = await join(gql, tenant, "analyst")
    await gql.ok(CHANGE, {"i": {"memberId": analyst_id, "role": "VIEWER"}}, token=tenant.token)
    await gql.ok(REMOVE, {"id": analyst_id}, token=tenant.token)
    await gql.ok(
        """mutation { connectPlatform(input: {platform: YOUTUBE,
            secrets: [{name: "api_key", value: "k"}]}) { __typename } }""",
        token=tenant.token,
        headers={"X-Request-Id": "req-audit-1"},
    )
    entries = [e["node"] for e in (await gql.ok(AUDIT, token=tenant.token))["auditLog"]["edges"]]
    actions = [e["action"] for e in entries]
    assert actions == [
        "credential.connected",
        "member.removed",
        "member.role_changed",
        "member.invitation_accepted",
        "member.invited",
        "auth.sign_in_succeeded",
        "auth.sign_in_failed",
    ]
    connected = entries[0]
    assert connected["requestId"] == "req-audit-1" and connected["ip"] == "127.0.0.1"
    assert connected["metadata"] == {"platform": "youtube"}
    assert entries[2]["metadata"]["from"] == "analyst" and entries[2]["metadata"]["to"] == "viewer"
    filtered = (await gql.ok(AUDIT, {"a": "member.removed"}, token=tenant.token))["auditLog"]
    assert [e["node"]["action"] for e in filtered["edges"]] == ["member.removed"]
    # analysts and viewers cannot read it
    denied = await gql(AUDIT, token=analyst)
    assert denied["errors"][0]["extensions"]["code"] in ("UNAUTHENTICATED", "FORBIDDEN")


async def test_isolation(gql: GQL, tenant: Tenant, other_tenant: Tenant) -> None:
    _, member_id = await join(gql, tenant, "analyst")
    # B's owner sees none of A's members, invitations or audit entries, and cannot touch them
    members = (await gql.ok(MEMBERS, token=other_tenant.token))["members"]["edges"]
    assert [e["node"]["email"] for e in members] == [other_tenant.email]
    assert (await gql.ok(INVITATIONS, token=other_tenant.token))["invitations"]["edges"] == []
    entries = (await gql.ok(AUDIT, token=other_tenant.token))["auditLog"]["edges"]
    assert all(
        e["node"]["metadata"].get("email") != f"analyst-{tenant.slug}@example.com" for e in entries
    )
    assert {e["node"]["action"] for e in entries} <= {"auth.sign_in_succeeded"}
    changed = await gql.ok(
        CHANGE, {"i": {"memberId": member_id, "role": "VIEWER"}}, token=other_tenant.token
    )
    assert changed["changeMemberRole"]["__typename"] == "NotFound"
    removed = await gql.ok(REMOVE, {"id": member_id}, token=other_tenant.token)
    assert removed["removeMember"]["__typename"] == "NotFound"
    node = await gql.ok(
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": member_id},
        token=other_tenant.token,
    )
    assert node["node"] is None
    mine = await gql.ok(
        "query($id: ID!) { node(id: $id) { id } }", {"id": member_id}, token=tenant.token
    )
    assert mine["node"] == {"id": member_id}


async def test_revoked_and_expired_invitations_cannot_be_accepted(gql: GQL, tenant: Tenant) -> None:
    from datetime import UTC, datetime, timedelta

    from domain.accounts.models import Invitation as InvitationRow

    revoked = await invite(gql, tenant.token, f"r-{tenant.slug}@example.com", "VIEWER")
    data = await gql.ok(
        """mutation($id: ID!) { revokeInvitation(id: $id) { __typename
            ... on RevokeInvitationSuccess { invitation { status } } } }""",
        {"id": revoked["invitation"]["id"]},
        token=tenant.token,
    )
    assert data["revokeInvitation"]["invitation"]["status"] == "REVOKED"
    expired = await invite(gql, tenant.token, f"e-{tenant.slug}@example.com", "VIEWER")
    async with in_transaction():
        await InvitationRow.filter(email=f"e-{tenant.slug}@example.com").update(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)
        )
    for prefix, invited in (("r", revoked), ("e", expired)):
        email = f"{prefix}-{tenant.slug}@example.com"
        refused = await gql.ok(
            ACCEPT, {"i": {"token": invited["token"], "email": email, "password": "long pass 12"}}
        )
        assert refused["acceptInvitation"]["__typename"] == "ValidationFailed"
    statuses = (await gql.ok(INVITATIONS, token=tenant.token))["invitations"]["edges"]
    assert sorted(e["node"]["status"] for e in statuses) == ["EXPIRED", "REVOKED"]
    pending = await gql.ok("{ invitations { edges { node { id } } } }", token=tenant.token)
    assert pending["invitations"]["edges"] == []
    entries = await gql.ok(AUDIT, {"a": "member.invitation_revoked"}, token=tenant.token)
    assert len(entries["auditLog"]["edges"]) == 1
