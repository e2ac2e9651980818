"""The Strawberry schema: every context's queries, mutations and subscriptions merged."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from core.logging import log_graphql_errors
from core.metrics import OperationMetrics
from domain.errors import DomainError
from schema.accounts.mutations import AccountMutations
from schema.accounts.queries import AccountQueries
from schema.analytics.queries import AnalyticsQueries
from schema.analytics.subscriptions import AnalyticsSubscriptions
from schema.apikeys.mutations import ApiKeyMutations
from schema.apikeys.queries import ApiKeyQueries
from schema.billing.mutations import BillingMutations
from schema.billing.queries import BillingQueries
from schema.collection.mutations import CollectionMutations
from schema.collection.queries import CollectionQueries
from schema.collection.subscriptions import CollectionSubscriptions
from schema.errors import UNAVAILABLE
from schema.extensions import MaskUnexpectedErrors, TenantTransaction
from schema.influencers.mutations import InfluencerMutations
from schema.influencers.queries import InfluencerQueries
from schema.insights.mutations import InsightMutations
from schema.insights.queries import InsightQueries
from schema.insights.subscriptions import InsightSubscriptions
from schema.limits import LIMIT_CODES, LimitedParserCache, LimitedValidationCache
from schema.members.mutations import MemberMutations
from schema.members.queries import MemberQueries
from schema.permissions import guard_scoped_types, requires
from schema.posts.mutations import PostMutations
from schema.posts.queries import PostQueries
from schema.posts.subscriptions import PostSubscriptions
from schema.trends.queries import TrendQueries
from schema.trends.subscriptions import TrendSubscriptions
from schema.webhooks.mutations import WebhookMutations
from schema.webhooks.queries import WebhookQueries
from tenants.pgclient import is_database_unavailable


@strawberry.type
class NodeQueries:
    node: relay.Node | None = relay.node(extensions=[requires("influencers:read")])


Query = merge_types(
    "Query",
    (
        NodeQueries,
        AccountQueries,
        InfluencerQueries,
        PostQueries,
        CollectionQueries,
        InsightQueries,
        AnalyticsQueries,
        BillingQueries,
        TrendQueries,
        MemberQueries,
        WebhookQueries,
        ApiKeyQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        AccountMutations,
        InfluencerMutations,
        PostMutations,
        CollectionMutations,
        InsightMutations,
        BillingMutations,
        MemberMutations,
        WebhookMutations,
        ApiKeyMutations,
    ),
)
Subscription = merge_types(
    "Subscription",
    (
        PostSubscriptions,
        CollectionSubscriptions,
        InsightSubscriptions,
        AnalyticsSubscriptions,
        TrendSubscriptions,
    ),
)


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
        OperationMetrics,  # first = outermost: sees errors after masking (core/metrics.py)
        MaskUnexpectedErrors,
        TenantTransaction,
        # Strawberry's parser and validation caches plus the abuse limits (schema/limits.py);
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
