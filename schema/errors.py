"""Typed errors: in the schema for mutations (payload unions), as coded GraphQL errors for
queries. Unexpected errors are masked and logged with the request id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry
import structlog
from graphql import GraphQLError, GraphQLSyntaxError
from graphql.validation.validate import ValidationAbortedError
from strawberry.exceptions import StrawberryInputCoercionError
from tortoise.transactions import in_transaction

from domain import errors as de
from tenants.pgclient import is_database_unavailable, retry_after
from tenants.tx import current_tx_or_none

log = structlog.get_logger(__name__)

T = TypeVar("T")


@strawberry.interface(description="An expected failure the client can act on.")
class UserError:
    message: str
    code: str


@strawberry.type
class FieldError:
    field: str
    message: str


@strawberry.type
class ValidationFailed(UserError):
    fields: list[FieldError]


@strawberry.type
class NotFound(UserError):
    id: strawberry.ID


@strawberry.type
class AuthenticationFailed(UserError):
    pass


@strawberry.type
class PermissionDenied(UserError):
    pass


@strawberry.type(description="The tenant's plan does not allow this; `limit` names the limit.")
class PlanLimitReached(UserError):
    limit: str
    plan: str
    allowed: int | None  # None: the limit is a yes/no feature the plan lacks


def to_user_error(exc: de.DomainError, ident: object = None) -> UserError:
    if isinstance(exc, de.ValidationFailed):
        return ValidationFailed(
            message=exc.message,
            code=exc.code,
            fields=[FieldError(field=e.field, message=e.message) for e in exc.errors],
        )
    if isinstance(exc, de.NotFound):
        return NotFound(
            message=exc.message, code=exc.code, id=strawberry.ID(str(ident or exc.ident))
        )
    if isinstance(exc, de.AuthenticationFailed):
        return AuthenticationFailed(message=exc.message, code=exc.code)
    if isinstance(exc, de.PermissionDenied):
        return PermissionDenied(message=exc.message, code=exc.code)
    if isinstance(exc, de.PlanLimitReached):
        allowed = (
            exc.allowed
            if isinstance(exc.allowed, int) and not isinstance(exc.allowed, bool)
            else None
        )
        return PlanLimitReached(
            message=exc.message, code=exc.code, limit=exc.limit, plan=exc.plan, allowed=allowed
        )
    raise exc


async def run_mutation(
    fn: Callable[[], Awaitable[T]], *, in_savepoint: bool = True
) -> T | UserError:
    """Run a mutation's service call; expected failures become typed errors and whatever
    the call wrote before failing is rolled back (a savepoint), so bad input changes nothing."""
    if not in_savepoint:
        try:
            return await fn()
        except de.DomainError as exc:
            return to_user_error(exc)
    tx = current_tx_or_none()
    mark = tx.mark() if tx is not None else None
    try:
        async with in_transaction():
            return await fn()
    except de.DomainError as exc:
        if tx is not None and mark is not None:
            tx.rollback_to(mark)  # its events and jobs go with the savepoint
        return to_user_error(exc)


# The code of an answer refused because PostgreSQL is down or saturated; the HTTP response is a
# 503 with Retry-After (api/app.py), and the client should simply try again.
UNAVAILABLE = "SERVICE_UNAVAILABLE"


class PublicError(GraphQLError):
    """A GraphQL error whose message is safe to show; carries `extensions.code`."""

    def __init__(self, message: str, code: str, **extra: Any) -> None:
        super().__init__(message, extensions={"code": code, **extra})


def as_unavailable(error: GraphQLError) -> GraphQLError | None:
    """The SERVICE_UNAVAILABLE error for a failure of PostgreSQL itself, else None."""
    if not is_database_unavailable(error.original_error):
        return None
    return GraphQLError(
        "The database is unavailable; retry shortly.",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": UNAVAILABLE, "retryAfter": retry_after(error.original_error)},
    )


# extensions.code of the client's mistakes that graphql-core and Strawberry leave uncoded
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"


def with_code(error: GraphQLError) -> GraphQLError:
    """The error with an `extensions.code` when it is the client's mistake and has none:
    a syntax error, a validation error (also "Validation aborted": a document too costly to
    validate, e.g. a field repeated a thousand times), a variable that does not coerce, or an
    argument Strawberry cannot convert (a bare number where a global id is expected). Without
    it, clients cannot tell these apart and /metrics counted some as server errors."""
    if (error.extensions or {}).get("code"):
        return error
    message = error.message
    original = error.original_error
    if isinstance(error, GraphQLSyntaxError):
        code = GRAPHQL_PARSE_FAILED  # (the error masking codes the parser's limits first)
    elif isinstance(error, ValidationAbortedError):
        code = GRAPHQL_VALIDATION_FAILED
        message = (
            "Validation aborted: the document repeats too many fields or has too many errors"
            " to check. Send a smaller document."
        )
    elif isinstance(original, StrawberryInputCoercionError):
        code = BAD_USER_INPUT  # an argument, during execution (has a path)
    elif error.path is None and message.startswith("Variable '$"):
        code = BAD_USER_INPUT  # graphql-core's variable coercion, before execution
    elif error.path is None and (original is None or isinstance(original, GraphQLError)):
        code = GRAPHQL_VALIDATION_FAILED
    else:
        return error
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original,
        extensions={**(error.extensions or {}), "code": code},
    )


def user_facing(error: GraphQLError) -> GraphQLError | None:
    """The error as the client should see it, or None if it must be masked."""
    original = error.original_error
    if isinstance(original, de.DomainError):
        ext: dict[str, Any] = {"code": original.code}
        if isinstance(original, de.ValidationFailed):
            ext["fields"] = [{"field": e.field, "message": e.message} for e in original.errors]
        elif isinstance(original, de.PlanLimitReached):
            ext.update(limit=original.limit, plan=original.plan)
        elif isinstance(original, de.RateLimited):
            ext["retryAfter"] = round(original.retry_after, 3)
        return GraphQLError(
            original.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=ext,
        )
    unavailable = as_unavailable(error)
    if unavailable is not None:
        return unavailable
    if original is None or isinstance(original, GraphQLError):
        # parse/validation errors, permission errors and PublicError carry their own message
        return with_code(error)
    return None
