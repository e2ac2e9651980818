"""E-mail verification, password reset and log-out, with mail delivered to a local SMTP server."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import asyncpg
import pytest

from core.settings import Smtp, get_settings
from tests.conftest import GQL, Services, Tenant, production_settings, run_jobs
from tests.fakes.smtp import Mailbox, local_smtp_server

VIEWER = "{ viewer { user { email emailVerifiedAt hasPassword } } }"
REQUEST_VERIFICATION = """mutation { requestEmailVerification { __typename
    ... on RequestEmailVerificationSuccess { sent } ... on UserError { code message } } }"""
VERIFY = """mutation($t: String!) { verifyEmail(token: $t) { __typename
    ... on VerifyEmailSuccess { email emailVerifiedAt }
    ... on ValidationFailed { code fields { field message } } } }"""
REQUEST_RESET = """mutation($e: String!) { requestPasswordReset(email: $e) { __typename
    ... on RequestPasswordResetSuccess { message } ... on ValidationFailed { code } } }"""
RESET = """mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) {
    __typename ... on ResetPasswordSuccess { email }
    ... on ValidationFailed { code fields { field message } } } }"""
LOG_IN = """mutation($i: LogInInput!) { logIn(input: $i) { __typename
    ... on AuthPayload { accessToken refreshToken } ... on UserError { code message } } }"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) { __typename
    ... on AuthPayload { accessToken refreshToken } ... on UserError { code message } } }"""
LOG_OUT = """mutation($t: String!, $all: Boolean! = false) {
    logOut(refreshToken: $t, everywhere: $all) { __typename ... on LogOutSuccess { revoked } } }"""
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(scope="module")
def smtp() -> Iterator[Mailbox]:
    with local_smtp_server() as box:
        yield box


@pytest.fixture(autouse=True)
def mail_settings(smtp: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    monkeypatch.setattr(
        settings, "smtp", Smtp(host=smtp.host, port=smtp.port, starttls=False, user=None)
    )
    monkeypatch.setattr(settings, "app_url", "https://app.trendscope.test")
    smtp.messages.clear()


async def _log_in(gql: GQL, email: str, password: str) -> dict[str, str]:
    data = await gql.ok(LOG_IN, {"i": {"email": email, "password": password}})
    return data["logIn"]  # type: ignore[no-any-return]


async def _expire(services: Services, token: str) -> None:
    conn = await asyncpg.connect(services.database_url)
    try:
        await conn.execute(
            "UPDATE public.one_time_token SET expires_at = now() - interval '1 second' "
            "WHERE token_hash = $1",
            hashlib.sha256(token.encode()).hexdigest(),
        )
    finally:
        await conn.close()


async def test_verification_mail_arrives_and_its_token_works_once(
    gql: GQL, tenant: Tenant, smtp: Mailbox
) -> None:
    before = await gql.ok(VIEWER, token=tenant.token)
    assert before["viewer"]["user"]["emailVerifiedAt"] is None
    asked = await gql.ok(REQUEST_VERIFICATION, token=tenant.token)
    assert asked["requestEmailVerification"] == {
        "__typename": "RequestEmailVerificationSuccess",
        "sent": True,
    }
    await run_jobs()
    [message] = smtp.to(tenant.email)
    assert message["Subject"] == "Confirm your e-mail address"
    assert message["From"] == get_settings().smtp.from_address
    body = message.get_body(("plain",))
    assert body is not None
    assert "https://app.trendscope.test/verify-email?token=" in body.get_content()
    token = smtp.token_in(message)

    verified = (await gql.ok(VERIFY, {"t": token}))["verifyEmail"]
    assert verified["__typename"] == "VerifyEmailSuccess"
    assert verified["email"] == tenant.email
    after = await gql.ok(VIEWER, token=tenant.token)
    assert after["viewer"]["user"]["emailVerifiedAt"] == verified["emailVerifiedAt"]

    again = (await gql.ok(VERIFY, {"t": token}))["verifyEmail"]
    assert again["__typename"] == "ValidationFailed"
    assert again["fields"][0]["field"] == "token"
    # verified now: nothing more to send
    done = await gql.ok(REQUEST_VERIFICATION, token=tenant.token)
    assert done["requestEmailVerification"]["sent"] is False
    await run_jobs()
    assert len(smtp.to(tenant.email)) == 1


async def test_expired_and_unknown_verification_tokens_fail(
    gql: GQL, tenant: Tenant, smtp: Mailbox, services: Services
) -> None:
    await gql.ok(REQUEST_VERIFICATION, token=tenant.token)
    await run_jobs()
    token = smtp.token_in(smtp.to(tenant.email)[0])
    await _expire(services, token)  # what the TTL does, without waiting for it
    expired = (await gql.ok(VERIFY, {"t": token}))["verifyEmail"]
    assert expired["__typename"] == "ValidationFailed"
    unknown = (await gql.ok(VERIFY, {"t": "made-up-token"}))["verifyEmail"]
    assert unknown["__typename"] == "ValidationFailed"
    viewer = await gql.ok(VIEWER, token=tenant.token)
    assert viewer["viewer"]["user"]["emailVerifiedAt"] is None


async def test_verification_needs_a_signed_in_user(gql: GQL) -> None:
    anonymous = await gql.ok(REQUEST_VERIFICATION)
    assert anonymous["requestEmailVerification"]["__typename"] == "AuthenticationFailed"


async def test_password_reset_answers_the_same_and_revokes_every_session(
    gql: GQL, tenant: Tenant, smtp: Mailbox
) -> None:
    other_session = await _log_in(gql, tenant.email, tenant.password)
    known = await gql.ok(REQUEST_RESET, {"e": tenant.email.upper()})
    unknown = await gql.ok(REQUEST_RESET, {"e": "nobody-here@example.com"})
    assert known == unknown  # no account enumeration
    assert known["requestPasswordReset"]["__typename"] == "RequestPasswordResetSuccess"
    malformed = await gql.ok(REQUEST_RESET, {"e": "not an address"})
    assert malformed["requestPasswordReset"]["__typename"] == "ValidationFailed"
    await run_jobs()
    assert [m["To"] for m in smtp.messages] == [tenant.email]  # only the real account's mail
    message = smtp.messages[0]
    assert message["Subject"] == "Reset your Trendscope password"
    token = smtp.token_in(message)

    weak = (await gql.ok(RESET, {"t": token, "p": "short"}))["resetPassword"]
    assert weak["__typename"] == "ValidationFailed"
    assert weak["fields"][0]["field"] == "newPassword"
    # bad input changed nothing: the token still works
    done = (await gql.ok(RESET, {"t": token, "p": NEW_PASSWORD}))["resetPassword"]
    assert done == {"__typename": "ResetPasswordSuccess", "email": tenant.email}

    for refresh in (tenant.refresh_token, other_session["refreshToken"]):
        refused = (await gql.ok(REFRESH, {"t": refresh}))["refreshToken"]
        assert refused["__typename"] == "AuthenticationFailed"
    # and the access tokens too (domain/accounts/sessions.py), not only at their expiry
    for access in (tenant.token, other_session["accessToken"]):
        assert (await gql.raw(VIEWER, token=access)).status_code == 401
    assert (await _log_in(gql, tenant.email, tenant.password))["__typename"] == (
        "AuthenticationFailed"
    )
    fresh = await _log_in(gql, tenant.email, NEW_PASSWORD)
    assert fresh["__typename"] == "AuthPayload"
    # the link proved the mailbox; and it works once
    viewer = await gql.ok(VIEWER, token=fresh["accessToken"])
    assert viewer["viewer"]["user"]["emailVerifiedAt"] is not None
    replay = (await gql.ok(RESET, {"t": token, "p": "yet another passphrase"}))["resetPassword"]
    assert replay["__typename"] == "ValidationFailed"


async def test_expired_reset_token_fails_and_a_reset_voids_older_links(
    gql: GQL, tenant: Tenant, smtp: Mailbox, services: Services
) -> None:
    await gql.ok(REQUEST_RESET, {"e": tenant.email})
    await gql.ok(REQUEST_RESET, {"e": tenant.email})
    await run_jobs()
    first, second = (smtp.token_in(m) for m in smtp.to(tenant.email))
    await _expire(services, first)
    expired = (await gql.ok(RESET, {"t": first, "p": NEW_PASSWORD}))["resetPassword"]
    assert expired["__typename"] == "ValidationFailed"
    assert (await _log_in(gql, tenant.email, tenant.password))["__typename"] == "AuthPayload"
    await gql.ok(REQUEST_RESET, {"e": tenant.email})
    await run_jobs()
    third = smtp.token_in(smtp.to(tenant.email)[-1])
    ok = (await gql.ok(RESET, {"t": second, "p": NEW_PASSWORD}))["resetPassword"]
    assert ok["__typename"] == "ResetPasswordSuccess"
    voided = (await gql.ok(RESET, {"t": third, "p": "another new passphrase"}))["resetPassword"]
    assert voided["__typename"] == "ValidationFailed"


async def test_log_out_revokes_the_family_only(gql: GQL, tenant: Tenant) -> None:
    session = await _log_in(gql, tenant.email, tenant.password)
    rotated = (await gql.ok(REFRESH, {"t": session["refreshToken"]}))["refreshToken"]
    out = await gql.ok(LOG_OUT, {"t": rotated["refreshToken"]})
    assert out["logOut"] == {"__typename": "LogOutSuccess", "revoked": True}
    after = (await gql.ok(REFRESH, {"t": rotated["refreshToken"]}))["refreshToken"]
    assert after == {
        "__typename": "AuthenticationFailed",
        "code": "UNAUTHENTICATED",
        "message": "invalid refresh token",
    }
    # the sign-up's own session is another family: untouched
    other = (await gql.ok(REFRESH, {"t": tenant.refresh_token}))["refreshToken"]
    assert other["__typename"] == "AuthPayload"
    unknown = await gql.ok(LOG_OUT, {"t": "not-a-token"})
    assert unknown["logOut"]["revoked"] is False


async def test_log_out_everywhere_needs_a_live_token(gql: GQL, tenant: Tenant) -> None:
    first = await _log_in(gql, tenant.email, tenant.password)
    second = await _log_in(gql, tenant.email, tenant.password)
    rotated = (await gql.ok(REFRESH, {"t": second["refreshToken"]}))["refreshToken"]
    # a stale (rotated) copy only ends its own family
    await gql.ok(LOG_OUT, {"t": second["refreshToken"], "all": True})
    dead = (await gql.ok(REFRESH, {"t": rotated["refreshToken"]}))["refreshToken"]
    assert dead["__typename"] == "AuthenticationFailed"
    live = (await gql.ok(REFRESH, {"t": first["refreshToken"]}))["refreshToken"]
    assert live["__typename"] == "AuthPayload"
    # a live token ends every session of the account
    await gql.ok(LOG_OUT, {"t": live["refreshToken"], "all": True})
    for token in (tenant.refresh_token, live["refreshToken"]):
        refused = (await gql.ok(REFRESH, {"t": token}))["refreshToken"]
        assert refused["__typename"] == "AuthenticationFailed"


async def test_tokens_of_one_tenants_user_touch_nothing_of_another(
    gql: GQL, tenant: Tenant, other_tenant: Tenant, smtp: Mailbox
) -> None:
    await gql.ok(REQUEST_VERIFICATION, token=tenant.token)
    await gql.ok(REQUEST_RESET, {"e": tenant.email})
    await run_jobs()
    assert smtp.to(other_tenant.email) == []
    # the two jobs run concurrently: tell the mails apart by subject, not by arrival order
    by_subject = {m["Subject"]: smtp.token_in(m) for m in smtp.to(tenant.email)}
    verify_token = by_subject["Confirm your e-mail address"]
    reset_token = by_subject["Reset your Trendscope password"]
    # a verification token is no reset token (and the other way round)
    crossed = (await gql.ok(RESET, {"t": verify_token, "p": NEW_PASSWORD}))["resetPassword"]
    assert crossed["__typename"] == "ValidationFailed"
    assert (await gql.ok(VERIFY, {"t": reset_token}))["verifyEmail"]["__typename"] == (
        "ValidationFailed"
    )
    await gql.ok(VERIFY, {"t": verify_token})
    await gql.ok(RESET, {"t": reset_token, "p": NEW_PASSWORD})
    other = await gql.ok(VIEWER, token=other_tenant.token)
    assert other["viewer"]["user"]["emailVerifiedAt"] is None
    still = await _log_in(gql, other_tenant.email, other_tenant.password)
    assert still["__typename"] == "AuthPayload"
    kept = (await gql.ok(REFRESH, {"t": other_tenant.refresh_token}))["refreshToken"]
    assert kept["__typename"] == "AuthPayload"
    # logging out with A's refresh token ends none of B's sessions
    await gql.ok(LOG_OUT, {"t": (await _log_in(gql, tenant.email, NEW_PASSWORD))["refreshToken"]})
    again = (await gql.ok(REFRESH, {"t": kept["refreshToken"]}))["refreshToken"]
    assert again["__typename"] == "AuthPayload"


async def test_without_an_smtp_host_production_refuses_and_development_logs() -> None:
    from email.message import EmailMessage

    from core.settings import Settings
    from domain.accounts import mail

    message = EmailMessage()
    message["To"] = "someone@example.com"
    message["Subject"] = "hello"
    message.set_content("a link")
    with pytest.raises(RuntimeError, match="SMTP__HOST"):
        await mail.send(production_settings(smtp=Smtp(host=None)), message)
    await mail.send(Settings(env="development", smtp=Smtp(host=None)), message)


async def test_an_invitation_is_mailed_and_only_the_mailed_link_works(
    gql: GQL, tenant: Tenant, other_tenant: Tenant, smtp: Mailbox
) -> None:
    from tests.conftest import set_plan
    from tests.members.test_members import ACCEPT, INVITE, MEMBERS

    await set_plan(tenant.slug, "starter")
    email = "invitee@example.com"
    invited = await gql.ok(INVITE, {"i": {"email": email, "role": "ANALYST"}}, token=tenant.token)
    assert invited["inviteMember"]["__typename"] == "InviteMemberSuccess"
    assert invited["inviteMember"]["token"] is None  # mailed: the token exists only there
    await run_jobs()
    [message] = smtp.to(email)
    assert message["Subject"].startswith("Join ")
    body = message.get_body(("plain",))
    assert body is not None
    assert "https://app.trendscope.test/accept-invitation?token=" in body.get_content()
    token = smtp.token_in(message)
    assert smtp.to(other_tenant.email) == []

    joined = await gql.ok(
        ACCEPT, {"i": {"token": token, "email": email, "password": "a long password 9"}}
    )
    assert joined["acceptInvitation"]["__typename"] == "AuthPayload", joined
    assert joined["acceptInvitation"]["tenantSlug"] == tenant.slug
    assert joined["acceptInvitation"]["role"] == "analyst"
    emails = {
        e["node"]["email"] for e in (await gql.ok(MEMBERS, token=tenant.token))["members"]["edges"]
    }
    assert email in emails
    # an accepted (or revoked, expired, unknown) invitation is not mailed again
    from domain.accounts.models import Invitation
    from jobs.accounts import send_invitation

    accepted = await Invitation.get(email=email, tenant__slug=tenant.slug)
    smtp.messages.clear()
    assert await send_invitation({}, "public", accepted.id) == "nothing to send"
    assert await send_invitation({}, "public", accepted.id + 10**9) == "nothing to send"
    assert smtp.messages == []
