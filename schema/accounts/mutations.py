from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.accounts.service import TokenPair, accounts
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


@strawberry.type
class AccountMutations:
    @strawberry.mutation(description="Create an account with a new tenant it owns.")
    async def sign_up(self, info: Info, input: SignUpInput) -> SignUpPayload:
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
        async def run() -> AuthPayload:
            return _auth(await accounts.refresh(info.context.settings, refresh_token))

        return await run_mutation(run, in_savepoint=False)  # type: ignore[return-value]
