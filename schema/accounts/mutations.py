from __future__ import annotations

from typing import Annotated

import strawberry
from starlette.responses import Response
from strawberry.types import Info

from api.ratelimit import auth_attempt, client_ip
from domain.accounts.service import TokenPair, accounts
from domain.errors import RateLimited
from schema.accounts.types import AuthPayload, LogInInput, SignUpInput
from schema.errors import AuthenticationFailed, PermissionDenied, ValidationFailed, run_mutation

SignUpPayload = Annotated[AuthPayload | ValidationFailed, strawberry.union("SignUpPayload")]
LogInPayload = Annotated[
    AuthPayload | AuthenticationFailed | PermissionDenied, strawberry.union("LogInPayload")
]
RefreshTokenPayload = Annotated[
    AuthPayload | AuthenticationFailed, strawberry.union("RefreshTokenPayload")
]


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
            _, _, pair = await accounts.sign_up(
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
            pair = await accounts.log_in(
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
            return _auth(await accounts.refresh(info.context.settings, refresh_token))

        return await run_mutation(run, in_savepoint=False)  # type: ignore[return-value]
