"""The executable GraphQL schema: the roots of `schema/`, the extensions of the execution
pipeline in their order, the abuse limits, and how errors reach the log."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from api.graphql.compiled import CompiledQueries
from api.graphql.limits import LIMIT_CODES, LimitedParserCache, LimitedValidationCache
from api.graphql.masking import MaskUnexpectedErrors
from api.graphql.metrics import OperationMetrics
from api.graphql.transaction import MutationTransaction
from core.logging import log_graphql_errors
from domain.errors import DomainError
from schema.errors import UNAVAILABLE
from schema.permissions import guard_scoped_types
from schema.schema import Mutation, Query, Subscription
from tenants.pgclient import is_database_unavailable


def _unavailable(error: GraphQLError) -> bool:
    """PostgreSQL down or saturated: /readyz and the 503s report it, not a traceback each."""
    return (error.extensions or {}).get("code") == UNAVAILABLE or is_database_unavailable(
        error.original_error
    )


class TrendscopeSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected failures (bad input, missing auth, a refused abuse limit) are answers, not
        # incidents: log the rest.
        unexpected = [
            e
            for e in errors
            if not isinstance(e.original_error, DomainError)
            and (e.extensions or {}).get("code") not in LIMIT_CODES
            and not _unavailable(e)
        ]
        if unexpected:  # one line, no traceback for a client's mistake (core/logging.py)
            log_graphql_errors(unexpected, execution_context)


schema = TrendscopeSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[
        OperationMetrics,  # first = outermost: sees errors after masking (api/graphql/metrics.py)
        MaskUnexpectedErrors,
        # A query of the compiled subset is answered with one statement; the mutation
        # transaction then sees the result set and opens nothing.
        CompiledQueries,
        MutationTransaction,  # with the read-only refusal of a restricted tenant
        # Strawberry's parser and validation caches plus the abuse limits (api/graphql/limits.py);
        # the caches themselves are shared per maxsize.
        lambda: LimitedParserCache(maxsize=1000),
        lambda: LimitedValidationCache(maxsize=1000),
    ],
    # Batching (JSON arrays of operations) on; GraphQLApp caps a batch at `limits.max_batch`
    # of its own settings (BATCH_TOO_LARGE), this figure is only Strawberry's default check.
    config=StrawberryConfig(batching_config={"max_operations": 100}),
)
# Every object of a scoped type, at any depth and through `node(id:)`, needs the type's scope
# (schema/permissions.py TYPE_SCOPES); derived from the built schema, so new fields are covered.
guard_scoped_types(schema)


def sdl() -> str:
    return schema.as_str() + "\n"
