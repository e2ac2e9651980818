from __future__ import annotations

from typing import Annotated

import strawberry
from starlette.responses import Response
from strawberry.types import Info

from core.ratelimit import auth_attempt, client_ip
from core.runtime import runtime
from core.settings import get_settings
from domain import errors as de
from domain.accounts import oidc
from domain.accounts.email_flows import email_flows
from domain.accounts.identities import identities
from domain.accounts.service import TokenPair, auth
from domain.errors import RateLimited
from schema.accounts.types import (
    AuthPayload,
    CompleteIdentityLinkSuccess,
    LinkIdentitySuccess,
    LogInInput,
    LogOutSuccess,
    RequestEmailVerificationSuccess,
    RequestPasswordResetSuccess,
    ResetPasswordSuccess,
    SignUpInput,
    UnlinkIdentitySuccess,
    VerifyEmailSuccess,
    identity_of,
)
from schema.errors import (
    AuthenticationFailed,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    run_mutation,
)

SignUpPayload = Annotated[AuthPayload | ValidationFailed, strawberry.union("SignUpPayload")]
LogInPayload = Annotated[
    AuthPayload | AuthenticationFailed | PermissionDenied, strawberry.union("LogInPayload")
]
RefreshTokenPayload = Annotated[
    AuthPayload | AuthenticationFailed, strawberry.union("RefreshTokenPayload")
]

LogOutPayload = Annotated[LogOutSuccess | ValidationFailed, strawberry.union("LogOutPayload")]
RequestEmailVerificationPayload = Annotated[
    RequestEmailVerificationSuccess | AuthenticationFailed,
    strawberry.union("RequestEmailVerificationPayload"),
]
VerifyEmailPayload = Annotated[
    VerifyEmailSuccess | ValidationFailed, strawberry.union("VerifyEmailPayload")
]
RequestPasswordResetPayload = Annotated[
    RequestPasswordResetSuccess | ValidationFailed, strawberry.union("RequestPasswordResetPayload")
]
ResetPasswordPayload = Annotated[
    ResetPasswordSuccess | ValidationFailed, strawberry.union("ResetPasswordPayload")
]
CompleteSignInPayload = Annotated[
    AuthPayload | AuthenticationFailed | PermissionDenied, strawberry.union("CompleteSignInPayload")
]
LinkIdentityPayload = Annotated[
    LinkIdentitySuccess | ValidationFailed | AuthenticationFailed,
    strawberry.union("LinkIdentityPayload"),
]
CompleteIdentityLinkPayload = Annotated[
    CompleteIdentityLinkSuccess | ValidationFailed | PermissionDenied | AuthenticationFailed,
    strawberry.union("CompleteIdentityLinkPayload"),
]
UnlinkIdentityPayload = Annotated[
    UnlinkIdentitySuccess | NotFound | ValidationFailed | AuthenticationFailed,
    strawberry.union("UnlinkIdentityPayload"),
]

RESET_REQUESTED = "If an account has this address, a link to choose a new password is on its way."


def _user_id(info: Info) -> int:
    principal = info.context.principal
    if principal is None:
        raise de.AuthenticationFailed("authentication required")
    if principal.user_id is None:  # an API key or a partner app: no person behind it
        raise de.AuthenticationFailed("this needs a person's sign-in, not an API credential")
    return int(principal.user_id)


def _auth(pair: TokenPair) -> AuthPayload:
    return AuthPayload(
        access_token=pair.access_token,
        access_token_expires_at=pair.access_token_expires_at,
        refresh_token=pair.refresh_token,
        tenant_slug=pair.tenant_slug,
        role=pair.role,
    )


async def limit_attempt(info: Info, account: str | None) -> None:
    """Brute-force guard of the sign-in mutations: per client IP and per account. A refusal
    is a RATE_LIMITED error (extensions.retryAfter) on a 429 with Retry-After."""
    request = info.context.request
    ip = client_ip(request.scope) if request is not None else None
    decision = await auth_attempt(info.context.settings, "login", ip, account)
    if decision is None or decision.allowed:
        return
    response = info.context.response
    if isinstance(response, Response):  # HTTP (over a websocket there are no headers)
        response.status_code = 429
        for name, value in decision.headers():
            response.headers[name.decode()] = value.decode()
    raise RateLimited("too many sign-in attempts; retry later", decision.retry_after)


@strawberry.type
class AccountMutations:
    @strawberry.mutation(description="Create an account with a new tenant it owns.")
    async def sign_up(self, info: Info, input: SignUpInput) -> SignUpPayload:
        await limit_attempt(info, input.email)

        async def run() -> AuthPayload:
            _, _, pair = await auth.sign_up(
                info.context.settings,
                email=input.email,
                password=input.password,
                display_name=input.display_name,
                tenant_name=input.tenant_name,
                tenant_slug=input.tenant_slug,
            )
            return _auth(pair)

        return await run_mutation(run, in_savepoint=False)  # type: ignore[return-value]

    @strawberry.mutation
    async def log_in(self, info: Info, input: LogInInput) -> LogInPayload:
        await limit_attempt(info, input.email)

        async def run() -> AuthPayload:
            pair = await auth.log_in(
                info.context.settings,
                email=input.email,
                password=input.password,
                tenant_slug=input.tenant_slug,
            )
            return _auth(pair)

        return await run_mutation(run, in_savepoint=False)  # type: ignore[return-value]

    @strawberry.mutation(description="Trade a refresh token for a new pair (rotation).")
    async def refresh_token(self, info: Info, refresh_token: str) -> RefreshTokenPayload:
        await limit_attempt(info, None)  # per IP (a refresh token is not guessable)

        async def run() -> AuthPayload:
            return _auth(await auth.refresh(info.context.settings, refresh_token))

        return await run_mutation(run, in_savepoint=False)  # type: ignore[return-value]

    @strawberry.mutation(
        description="Revoke the refresh token's family: every token rotated from this login. "
        "With `everywhere`, every session of the account."
    )
    async def log_out(
        self, info: Info, refresh_token: str, everywhere: bool = False
    ) -> LogOutPayload:
        async def run() -> LogOutSuccess:
            revoked = await auth.log_out(refresh_token, everywhere=everywhere)
            return LogOutSuccess(revoked=revoked)

        return await run_mutation(run, in_savepoint=False)  # type: ignore[return-value]

    @strawberry.mutation(description="Mail a single-use verification link to the viewer.")
    async def request_email_verification(self, info: Info) -> RequestEmailVerificationPayload:
        async def run() -> RequestEmailVerificationSuccess:
            sent = await email_flows.request_email_verification(_user_id(info))
            return RequestEmailVerificationSuccess(sent=sent)

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(description="Confirm the address with the token from the mail.")
    async def verify_email(self, info: Info, token: str) -> VerifyEmailPayload:
        await limit_attempt(info, None)

        async def run() -> VerifyEmailSuccess:
            user = await email_flows.verify_email(token)
            assert user.email_verified_at is not None
            return VerifyEmailSuccess(email=user.email, email_verified_at=user.email_verified_at)

        return await run_mutation(run, in_savepoint=False)  # type: ignore[return-value]

    @strawberry.mutation(
        description="Mail a password-reset link if an account has this address. The answer "
        "is the same either way."
    )
    async def request_password_reset(self, info: Info, email: str) -> RequestPasswordResetPayload:
        await limit_attempt(info, email)  # per account too: no mail-bombing an address

        async def run() -> RequestPasswordResetSuccess:
            await email_flows.request_password_reset(email)
            return RequestPasswordResetSuccess(message=RESET_REQUESTED)

        return await run_mutation(run, in_savepoint=False)  # type: ignore[return-value]

    @strawberry.mutation(
        description="Choose a new password with the token from the mail; signs out every "
        "session (refresh tokens) of the account."
    )
    async def reset_password(
        self, info: Info, token: str, new_password: str
    ) -> ResetPasswordPayload:
        await limit_attempt(info, None)

        async def run() -> ResetPasswordSuccess:
            user = await email_flows.reset_password(token, new_password)
            return ResetPasswordSuccess(email=user.email)

        return await run_mutation(run, in_savepoint=False)  # type: ignore[return-value]

    @strawberry.mutation(
        description="Trade the one-time code a provider sign-in ended with "
        "(`/auth/complete?code=`) for tokens."
    )
    async def complete_sign_in(
        self, info: Info, code: str, tenant_slug: str | None = None
    ) -> CompleteSignInPayload:
        await limit_attempt(info, None)

        async def run() -> AuthPayload:
            assert runtime.redis is not None
            pair = await auth.complete_sign_in(get_settings(), runtime.redis, code, tenant_slug)
            return _auth(pair)

        return await run_mutation(run, in_savepoint=False)  # type: ignore[return-value]

    @strawberry.mutation(
        description="Link a sign-in provider to the viewer: send the browser to the URL; the "
        "flow ends at `/auth/complete?link_code=...&provider=...`, finished by "
        "`completeIdentityLink`."
    )
    async def link_identity(self, info: Info, provider: str) -> LinkIdentityPayload:
        async def run() -> LinkIdentitySuccess:
            user_id = _user_id(info)
            settings = get_settings()  # read per call, like the callback route
            request = info.context.request
            default = (
                str(request.url_for("sign_in_callback", provider=provider))
                if request is not None
                else ""
            )
            assert runtime.redis is not None
            try:
                url, _ = await oidc.start(
                    runtime.redis,
                    settings,
                    provider_name=provider,
                    redirect_uri=oidc.redirect_uri_for(settings, provider, default),
                    intent="link",
                    user_id=user_id,
                )
            except oidc.SignInError as exc:
                raise de.ValidationFailed(de.FieldError("provider", str(exc))) from exc
            return LinkIdentitySuccess(authorization_url=url)

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(
        description="Finish linking with the `link_code` the flow ended with; only the user "
        "who started the link may finish it."
    )
    async def complete_identity_link(self, info: Info, code: str) -> CompleteIdentityLinkPayload:
        async def run() -> CompleteIdentityLinkSuccess:
            user_id = _user_id(info)
            assert runtime.redis is not None
            linked = await identities.complete_identity_link(
                get_settings(), runtime.redis, user_id, code
            )
            return CompleteIdentityLinkSuccess(identity=identity_of(linked))

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(description="Remove a linked sign-in provider from the viewer.")
    async def unlink_identity(self, info: Info, id: strawberry.ID) -> UnlinkIdentityPayload:
        async def run() -> UnlinkIdentitySuccess:
            user_id = _user_id(info)
            try:
                ident = int(id)
            except ValueError as exc:
                raise de.NotFound("Identity", id) from exc
            await identities.unlink_identity(user_id, ident)
            return UnlinkIdentitySuccess(id=id)

        return await run_mutation(run)  # type: ignore[return-value]
